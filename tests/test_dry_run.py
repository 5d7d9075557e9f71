"""Dry-run: the same playbooks through a recording executor; golden transcripts, no credentials, no changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

GOLDEN = Path(__file__).parent / "golden"
CONFIG = """\
name: golden
provider:
  plan: "^GPU-8xCPU-64GB-1xL40S$"
  storage_gb: 150
ssh:
  user: ubuntu
  private_key: /keys/id_ed25519
engine:
  kind: vllm
  model: Qwen/Qwen2.5-7B-Instruct
  served_name: qwen-7b
  max_model_len: 32768
monitoring:
  prometheus_config: /prom/prometheus.yml
  promtool: always
"""


def _env(tmp_path: Path) -> dict[str, str]:
    # A PATH without upctl and no credentials: dry-run must not need either.
    return {"PATH": os.path.dirname(os.sys.executable) + ":/usr/bin:/bin", "HOME": str(tmp_path / "home")}


@pytest.mark.parametrize("command", ["deploy"])
def test_dry_run_matches_golden(command: str, tmp_path: Path) -> None:
    cfg = tmp_path / "golden.yaml"
    cfg.write_text(CONFIG)
    proc = run_cli(command, str(cfg), "--dry-run", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.replace(str(cfg), "CONFIG").replace(os.environ["ORCHESTRATOR_HOME"], "$ORCHESTRATOR_HOME")
    golden = GOLDEN / f"{command}-dry-run.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


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
        "prometheus.yml (mode",  # the scrape config write (known_hosts is written at connect)
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
