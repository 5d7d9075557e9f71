"""The CLI's output contract: --json on every command (errors too, with the exit code the process exits with),
ISO-8601 times in `status --json`, masked --debug tracebacks, a 0700 $ORCHESTRATOR_HOME that config defaults follow."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.state import (
    Deployment,
    HealthRecord,
    MonitoringRecord,
    ServerRecord,
    StateStore,
    StepRecord,
)
from tests.conftest import REPO, run_cli

CONFIG = """\
name: jsontest
provider:
  zone: fi-hel2
engine:
  kind: vllm
  model: Qwen/Qwen2.5-0.5B-Instruct
  api_key_env: ORCH_TEST_API_KEY
"""
SECRET = "sk-planted-4f1d9e0b7a2c"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "jsontest.yaml"
    path.write_text(text)
    return path


def error_doc(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """The one JSON object a failed --json command prints on stdout."""
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def test_bad_config_json_error_carries_the_exit_code(tmp_path: Path) -> None:
    bad = config(tmp_path, CONFIG.replace("  zone: fi-hel2", "  zone: fi-hel2\n  colour: blue"))
    for argv in (["validate", str(bad)], ["deploy", str(bad)], ["deploy", str(bad), "--dry-run"]):
        proc = run_cli(*argv, "--json")
        assert proc.returncode == 2, proc.stderr
        doc = error_doc(proc)
        assert doc == {
            "ok": False,
            "error": f"{bad}:4: provider.colour: unknown key 'colour'",
            "hint": doc["hint"],
            "exit_code": 2,
        }
        assert f"error: {bad}:4: provider.colour: unknown key 'colour'" in proc.stderr  # stderr says it as well
    plain = run_cli("validate", str(bad))
    assert plain.returncode == 2 and plain.stdout == ""  # without --json: no JSON on stdout


def test_held_lock_json_error_exit_11(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    with StateStore().lock("jsontest", "deploy"):
        proc = run_cli("deploy", str(cfg), "--json", env={"ORCH_TEST_API_KEY": SECRET})
    assert proc.returncode == 11, proc.stderr
    doc = error_doc(proc)
    assert doc["ok"] is False and doc["exit_code"] == 11
    assert str(doc["error"]).startswith("deployment 'jsontest' is busy: pid ") and "`orchestrator deploy`" in str(
        doc["error"]
    )
    assert "wait for it to finish" in str(doc["hint"])


def test_unknown_deployment_json_errors(tmp_path: Path) -> None:
    for argv in (["status", "nosuch", "--json"], ["teardown", "nosuch", "--yes", "--json"]):
        proc = run_cli(*argv)
        assert proc.returncode == 11, proc.stderr
        doc = error_doc(proc)
        assert doc["exit_code"] == 11 and "no deployment named 'nosuch'" in str(doc["error"])


def test_blocked_teardown_json_exit_code_is_the_process_exit_code(tmp_path: Path) -> None:
    """A teardown that fails in a step whose own category is monitoring (9) exits 10: the JSON says the same."""
    prom = tmp_path / "prometheus.yml"
    prom.write_text("scrape_configs: [\n")  # unparseable
    for key in ("key", "key.pub"):  # the preflight only checks that the files exist
        (tmp_path / key).write_text("")
    cfg = config(tmp_path, CONFIG + "ssh:\n  private_key: key\n")
    store = StateStore()
    store.save(
        Deployment(
            name="jsontest",
            config_path=str(cfg),
            status="deployed",
            monitoring=MonitoringRecord(prometheus_config=str(prom), job="orchestrator-jsontest"),
        )
    )
    proc = run_cli("teardown", "jsontest", "--yes", "--json")
    assert proc.returncode != 0, proc.stderr
    doc = error_doc(proc)
    assert doc["exit_code"] == proc.returncode
    assert doc["ok"] is False and doc["command"] == "teardown" and doc["deployment"] == "jsontest"
    assert [s["kind"] for s in doc["steps"]][:2] == ["stop-engine", "unmonitor"]  # type: ignore[index]


def test_validate_json(tmp_path: Path) -> None:
    proc = run_cli("validate", str(REPO / "configs" / "vllm-l40s.yaml"), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["engine"] == "vllm" and doc["zone"]
    assert doc["playbooks"] == {"deploy": doc["playbooks"]["deploy"], "redeploy": doc["playbooks"]["redeploy"],
                                "teardown": doc["playbooks"]["teardown"]}
    assert all(isinstance(n, int) and n > 0 for n in doc["playbooks"].values())


def test_status_json_times_are_iso_8601_utc(tmp_path: Path) -> None:
    store = StateStore()
    dep = Deployment(
        name="jsontest",
        config_path="/x/jsontest.yaml",
        created_at=1700000000.0,
        status="deployed",
        server=ServerRecord(uuid="00aa", ip="203.0.113.5"),
        health=HealthRecord(ok=True, checked_at=1700000100.25, detail="200", time_to_healthy=12.5),
        steps={"provision": StepRecord(status="ok", finished_at=1700000050.0, seconds=50.0)},
        auto_stop_at=1700003600.0,
        config={"name": "jsontest"},
    )
    store.save(dep)
    proc = run_cli("status", "--json")
    assert proc.returncode == 0, proc.stderr
    [doc] = json.loads(proc.stdout)
    assert doc["created_at"] == "2023-11-14T22:13:20Z"
    assert doc["health"]["checked_at"] == "2023-11-14T22:15:00Z" and doc["health"]["time_to_healthy"] == 12.5
    assert doc["steps"]["provision"]["finished_at"] == "2023-11-14T22:14:10Z"
    assert doc["auto_stop_at"] == "2023-11-14T23:13:20Z"
    assert ISO.match(doc["updated_at"])
    assert "config" not in doc and doc["server"]["ip"] == "203.0.113.5"


def test_debug_traceback_is_masked(tmp_path: Path) -> None:
    """An exception whose message carries a secret: the --debug traceback shows *** like every other line."""
    cfg = config(tmp_path)
    boom = (
        "import os, sys\n"
        "import orchestrator.state as st\n"
        "def load(self, name):\n"
        "    raise RuntimeError('upstream said ' + os.environ['ORCH_TEST_API_KEY'])\n"
        "st.StateStore.load = load\n"
        f"sys.argv = ['orchestrator', 'deploy', {str(cfg)!r}, '--debug']\n"
        "from orchestrator.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "ORCH_TEST_API_KEY": SECRET}
    proc = subprocess.run(
        [sys.executable, "-c", boom], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback (most recent call last):" in proc.stderr
    assert "RuntimeError: upstream said ***" in proc.stderr  # the traceback's last line
    assert "error: internal error: RuntimeError: upstream said ***" in proc.stderr
    assert SECRET not in proc.stderr + proc.stdout


def _cli_umask_022(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # HOME without ~/.ssh: the deploy stops at the missing key, whatever this machine's own keys are
    env = {**os.environ, "ORCHESTRATOR_HOME": str(home), "ORCH_TEST_API_KEY": SECRET, "HOME": str(cwd / "user")}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask: a plain mkdir would make the home 0755
    )


def test_orchestrator_home_is_created_0700(tmp_path: Path) -> None:
    home = tmp_path / "new" / "orch-home"
    cfg = config(tmp_path, CONFIG.replace("api_key_env: ORCH_TEST_API_KEY", "api_key_env: ORCH_UNSET_KEY"))
    dry = _cli_umask_022("deploy", str(cfg), "--dry-run", home=home, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert not home.exists(), "a dry run creates nothing, not even the home"
    # a real deploy: generates the API key, takes the lock, then stops at the missing SSH key (exit 2)
    proc = _cli_umask_022("deploy", str(cfg), home=home, cwd=tmp_path)
    assert proc.returncode == 2 and "SSH public key not found" in proc.stderr, proc.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "secrets").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "deployments").stat().st_mode) == 0o700
    assert stat.S_IMODE(home.parent.stat().st_mode) == 0o755  # parents: the usual mode


def test_config_defaults_follow_orchestrator_home(tmp_path: Path) -> None:
    home = tmp_path / "elsewhere"
    cfg = config(tmp_path)
    proc = run_cli("deploy", str(cfg), "--dry-run", env={"ORCHESTRATOR_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    assert f"read: {home}/prometheus/prometheus.yml" in proc.stdout
    assert "/.orchestrator/prometheus" not in proc.stdout


@pytest.mark.parametrize("argv", [["--version"], ["validate", "--help"]])
def test_version_and_help_are_plain(argv: list[str]) -> None:
    proc = run_cli(*argv)
    assert proc.returncode == 0, proc.stderr
    if argv == ["--version"]:
        import orchestrator

        assert proc.stdout == f"orchestrator {orchestrator.__version__}\n"
    else:
        assert "--json" in proc.stdout


def test_usage_errors_follow_the_json_contract(tmp_path: Path) -> None:
    proc = run_cli("deploy", str(config(tmp_path)), "--no-such-flag", "--json")
    assert proc.returncode == 2
    assert error_doc(proc) == {
        "ok": False,
        "error": "No such option: --no-such-flag",
        "hint": "see `orchestrator --help` (or COMMAND --help)",
        "exit_code": 2,
    }
    assert "Error: No such option: --no-such-flag" in proc.stderr  # click's usage message, as without --json
    missing = run_cli("validate", "--json")
    assert missing.returncode == 2 and error_doc(missing)["error"] == "Missing argument 'config'."
    plain = run_cli("deploy", "--no-such-flag")
    assert plain.returncode == 2 and plain.stdout == ""


def test_version_loads_no_heavy_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "orchestrator", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("orchestrator ")
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "importlib.metadata" in loaded  # the installed version is asked for ...
    assert not {"typer", "pydantic", "paramiko", "httpx", "yaml"} & loaded  # ... and nothing heavy is loaded


def test_orphan_commands_json_errors(tmp_path: Path) -> None:
    """The mechanism is the error boundary's, not each command's: the --orphans branches follow it too."""
    env = {"ORCHESTRATOR_UPCTL": str(tmp_path / "no-such-upctl")}
    for argv in (["status", "--orphans", "--json"], ["teardown", "--orphans", "--yes", "--json"]):
        proc = run_cli(*argv, env=env)
        assert proc.returncode == 3, proc.stderr
        doc = error_doc(proc)
        assert (doc["exit_code"], doc["error"]) == (3, f"{tmp_path / 'no-such-upctl'}: command not found")


def test_output_into_a_closed_pipe_is_dropped_and_the_command_goes_on(tmp_path: Path) -> None:
    """`| head`: once the reader has gone, the rest of the output is dropped (no BrokenPipeError, no "internal
    error") and the command runs to its end and its own exit code, so a deploy is not cut off halfway."""
    marker = tmp_path / "finished"
    code = (
        "import sys\n"
        "from orchestrator.console import Console\n"
        "c = Console()\n"
        "for n in range(20000):\n    c.out(f'line {n} ' + 'x' * 60)\n"
        "c.err('still here')\n"
        f"open({str(marker)!r}, 'w').write('done')\n"
        "sys.exit(3)\n"
    )
    line = f"{sys.executable} -c {shlex.quote(code)} | head -n 1; echo \"rc=${{PIPESTATUS[0]}}\" >&2"
    proc = subprocess.run(["bash", "-c", line], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert proc.stdout == "line 0 " + "x" * 60 + "\n"
    assert "still here" in proc.stderr and "rc=3" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert marker.read_text() == "done"
    plan = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m orchestrator deploy configs/vllm-ray-l40s.yaml --dry-run | head -n 2; "
                       "echo \"rc=${PIPESTATUS[0]}\" >&2"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "ORCHESTRATOR_HOME": str(tmp_path)},
    )  # fmt: skip
    assert len(plan.stdout.splitlines()) == 2 and "rc=0" in plan.stderr, plan.stderr
    assert "internal error" not in plan.stderr, plan.stderr
