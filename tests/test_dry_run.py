"""Dry-run: the same playbooks through a recording executor; golden transcripts, no credentials, no changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.golden_cases import UBUNTU_CONFIG, Case, cases, configs, run_case

CONFIG = UBUNTU_CONFIG


def _env(tmp_path: Path) -> dict[str, str]:
    # A PATH without upctl and no credentials: dry-run must not need either.
    return {"PATH": os.path.dirname(os.sys.executable) + ":/usr/bin:/bin", "HOME": str(tmp_path / "home")}


@pytest.mark.parametrize("case", cases(), ids=lambda c: f"{c.config}-{c.command}")
def test_dry_run_matches_golden(case: Case, tmp_path: Path) -> None:
    """Exactly the golden transcript (only <tmp>/<repo> paths normalised). On a wanted plan change, run
    scripts/update-golden.py and review the diff; this test never writes the golden files."""
    assert case.golden.exists(), f"{case.golden} is missing: run scripts/update-golden.py"
    assert run_case(case, tmp_path) == case.golden.read_text()


def test_golden_files_show_the_bearer_header_and_every_remote_command() -> None:
    """What the golden files must show (checked on the files themselves, not on a fresh run)."""
    for config in ("vllm-l40s", "demo", "ubuntu"):
        for command in ("deploy", "redeploy"):
            text = Case(config, command).golden.read_text()
            health = text.split("] health\n")[1].split("] monitoring")[0]
            checks = [line for line in health.splitlines() if ". http: " in line]
            models = [line for line in checks if "/v1/models " in line or "/v1/completions " in line]
            assert models and all("(Authorization: Bearer ***)" in line for line in models), config
            assert all("while polling, is it alive: remote: " in line for line in checks)
            assert all("if it fails, its log: remote: " in line for line in checks)
            assert 'remote: printf %s "$HOME"' in text.split("] connect")[1].split("] firewall")[0]
    for config in configs():
        teardown = Case(config, "teardown").golden.read_text()
        assert "ssh: connect " in teardown and "--delete-storages" in teardown, config
    triton = Case("triton-l40s", "deploy").golden.read_text()
    assert "docker logs --tail 80 orchestrator-triton-l40s" in triton and "Bearer" not in triton


def test_dry_run_bearer_without_a_key_yet(tmp_path: Path) -> None:
    """No VLLM_API_KEY and no generated key file: the real run would generate one, so the plan sends the header;
    with engine.api_key_env: null it would not, and neither does the plan. Nothing is written."""
    cfg = tmp_path / "golden.yaml"
    cfg.write_text(CONFIG)
    out = run_cli("deploy", str(cfg), "--dry-run", env=_env(tmp_path)).stdout
    assert out.count("(Authorization: Bearer ***)") == 2
    assert "engine.env (mode 0600, 118 bytes" in out  # the same size as with a generated 43-character key
    assert "planned-key" not in out
    assert not (tmp_path / "home" / ".orchestrator").exists()
    cfg.write_text(CONFIG.replace("  max_model_len: 32768\n", "  max_model_len: 32768\n  api_key_env: null\n"))
    open_out = run_cli("deploy", str(cfg), "--dry-run", env=_env(tmp_path)).stdout
    assert "Authorization" not in open_out and "engine.env (mode 0600, 61 bytes" in open_out


def test_home_probe_is_a_plan_action_whose_answer_the_executor_keeps() -> None:
    from orchestrator.actions import HomeProbe, Remote, Result
    from orchestrator.transports.live import LiveExecutor

    class FakeSsh:
        home: str | None = None

        def run(self, command: str, timeout: float) -> Result:
            return Result(stdout="/home/op\n" if command == HomeProbe().command else "x")

    executor = LiveExecutor({})
    fake = FakeSsh()
    executor.ssh = fake  # type: ignore[assignment]
    executor.execute(Remote('printf %s "$HOME"', "a plain remote command is not the probe"))
    assert fake.home is None
    executor.execute(HomeProbe())
    assert fake.home == "/home/op"
    assert HomeProbe().describe() == 'remote: printf %s "$HOME"'


def test_dry_run_real_config_needs_no_credentials(tmp_path: Path) -> None:
    proc = run_cli("deploy", "configs/vllm-l40s.yaml", "--dry-run", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # every upctl call, every remote command, every file write and every health URL, in order
    order = [
        "upctl server plans",
        "upctl server create",
        "--os-storage-size 200",
        "ssh: connect root@<server.ip>",
        "nvidia-smi --query-gpu",
        "pip install vllm",
        "upload: .orchestrator/qwen-l40s/engine.env",
        "systemctl restart orchestrator-qwen-l40s.service",
        "http: GET http://<server.ip>:8000/health",
        "/v1/models",
        "POST http://<server.ip>:8000/v1/completions",
        "prometheus.yml (mode",
    ]
    positions = [out.find(s) for s in order]
    assert all(p >= 0 for p in positions), list(zip(order, positions, strict=True))
    assert positions == sorted(positions)
    assert not (tmp_path / "home" / ".orchestrator").exists(), "dry-run must not write state or files"


def test_dry_run_json_and_secrets_hidden(tmp_path: Path) -> None:
    cfg = tmp_path / "golden.yaml"
    cfg.write_text(CONFIG)
    env = _env(tmp_path) | {"VLLM_API_KEY": "sk-planted-api-key-123", "HF_TOKEN": "hf_plantedtoken456"}
    proc = run_cli("deploy", str(cfg), "--dry-run", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["dry_run"] is True and doc["ok"] is True
    assert [s["kind"] for s in doc["steps"]][0] == "provision"
    assert "Authorization: Bearer ***" in proc.stdout
    for secret in ("sk-planted-api-key-123", "hf_plantedtoken456"):
        assert secret not in proc.stdout + proc.stderr


def test_help_is_fast_path(tmp_path: Path) -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0 and "deploy" in proc.stdout and "Exit codes" in proc.stdout
    probe = (
        "import sys, orchestrator.cli; heavy = [m for m in ('paramiko', 'httpx', 'prometheus_client', "
        "'pydantic') if m in sys.modules]; print(heavy)"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
