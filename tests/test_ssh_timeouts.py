"""Remote command timeouts are at least as long as the waits the commands contain (the dpkg lock, `timeout N`,
poll loops): otherwise our SSH timeout fires while apt is still, correctly, waiting for unattended-upgrades."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from orchestrator.actions import Action, HttpCheck, Remote
from tests.conftest import REPO
from tests.golden_cases import plannable

CONFIGS = [p for p in sorted((REPO / "configs").glob("*.yaml")) if plannable(p)]  # deploy plans these today
# Found independently of orchestrator.actions.contained_wait, so the test does not grade its own rule.
LOCK = re.compile(r"Lock::Timeout=(\d+)")
TIMEOUT_CMD = re.compile(r"(?:^|[\s;&|(])timeout\s+(?:-\S+\s+(?:[A-Z]+\s+)?)*(\d+)\b")
LOOP = re.compile(r"-lt (\d+) \]; do sleep ([\d.]+)")
SLEEP = re.compile(r"(?:^|[\s;&|(])sleep ([\d.]+)")


def waits_in(command: str) -> float:
    found = [float(n) for n in LOCK.findall(command) + TIMEOUT_CMD.findall(command)]
    found += [float(n) * float(s) for n, s in LOOP.findall(command)]
    if "nohup" not in command:  # a detached timer (auto-stop's `sleep TTL`) is not waited for
        found += [float(s) for s in SLEEP.findall(command)]
    return max(found, default=0.0)


def variants() -> list[tuple[str, dict[str, object]]]:
    out: list[tuple[str, dict[str, object]]] = []
    for path in CONFIGS:
        data = yaml.safe_load(path.read_text())
        engine = data.get("engine", {})
        for key, value in list(engine.items()):  # model folders are relative to the config's own directory
            if isinstance(value, str) and (path.parent / value).exists() and not value.startswith("/"):
                engine[key] = str((path.parent / value).resolve())
        out.append((path.stem, data))
    vllm = yaml.safe_load((REPO / "configs" / "vllm-l40s.yaml").read_text())
    docker = dict(vllm, engine={**vllm["engine"], "install": {"method": "docker"}})
    ml = dict(vllm, host={"pytorch": {"enabled": True}, "tensorflow": {"enabled": True}, "compile_check": True})
    nonroot = dict(vllm, ssh={**vllm.get("ssh", {}), "user": "ubuntu"}, provider={**vllm["provider"], "ttl": "2h"})
    return [*out, ("vllm-docker", docker), ("ml-stacks", ml), ("non-root-ttl", nonroot)]


def planned_remotes(data: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Remote]:
    """Every Remote the dry-run of deploy and redeploy hands the executor (health checks' inner ones too)."""
    from orchestrator.commands.specs import DEPLOY, REDEPLOY, TEARDOWN
    from orchestrator.config import load_config
    from orchestrator.session import run_playbooks
    from orchestrator.transports.recording import RecordingExecutor

    seen: list[Action] = []
    original = RecordingExecutor.execute

    def record(self: RecordingExecutor, action: Action) -> object:
        seen.append(action)
        return original(self, action)

    monkeypatch.setattr(RecordingExecutor, "execute", record)
    data = dict(data)
    data["monitoring"] = {"prometheus_config": str(tmp_path / "prom" / "prometheus.yml")}
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    cfg = load_config(cfg_path)
    run_playbooks(DEPLOY, cfg, str(cfg_path), dry_run=True, as_json=True, debug=False)
    # redeploy and teardown start from what a finished deploy recorded (redeploy never creates a server)
    from orchestrator.state import Deployment, ServerRecord, StateStore

    server = ServerRecord(uuid="00000000-0000-4000-8000-000000000001", ip="203.0.113.10", state="started")
    StateStore().save(Deployment(name=cfg.name, config_path=str(cfg_path), server=server, status="deployed"))
    for spec in (REDEPLOY, TEARDOWN):
        run_playbooks(spec, cfg, str(cfg_path), dry_run=True, as_json=True, debug=False)
    remotes: list[Remote] = []
    for a in seen:
        if isinstance(a, Remote):
            remotes.append(a)
        elif isinstance(a, HttpCheck):
            remotes += [r for r in (a.liveness, a.log_tail) if r is not None]
    return remotes


@pytest.mark.parametrize("name, data", variants(), ids=[v[0] for v in variants()])
def test_every_remote_outlasts_its_own_waits(
    name: str,
    data: dict[str, object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    remotes = planned_remotes(data, tmp_path, monkeypatch)
    capsys.readouterr()
    assert len(remotes) > 10
    waiting = [r for r in remotes if waits_in(r.command)]
    if name.startswith("vllm") or name == "ml-stacks":
        assert any(LOCK.search(r.command) for r in waiting), "the plan installs packages with apt"
    for r in waiting:
        assert r.timeout >= waits_in(r.command) + 60, f"{r.purpose}: timeout {r.timeout:.0f}s < {r.command}"


def test_apt_commands_wait_for_the_dpkg_lock_and_outlast_it() -> None:
    from orchestrator import hostprep
    from orchestrator.hostprep import Needs, install_plan

    plan = install_plan(None, Needs(user="ubuntu", driver_branch="580", docker=True, python_venv=True))
    apt = [c for item in plan for c in item.commands if "apt-get" in c.command]
    assert len(apt) >= 4
    for cmd in apt:
        wait = float(LOCK.findall(cmd.command)[0])
        assert wait == 600 and cmd.timeout >= wait + 60, cmd
    assert hostprep.apt(["update"], "root").startswith("env DEBIAN_FRONTEND=noninteractive apt-get")


def test_the_step_timeout_still_bounds_a_waiting_command() -> None:
    import time

    from orchestrator.runner import _clamp

    cmd = Remote("apt-get -o DPkg::Lock::Timeout=600 update", "refresh package lists")
    assert cmd.timeout >= 660
    clamped = _clamp(cmd, time.monotonic() + 30)
    assert isinstance(clamped, Remote) and clamped.timeout <= 30 and clamped.command == cmd.command
