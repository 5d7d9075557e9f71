"""Fault scenarios for SSH and the firewall: a connection reset mid-step, the operator's address changed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from mockcloud.cloud import MockCloud
from tests.conftest import run_cli
from tests.test_e2e import cloud, env, write_config  # noqa: F401 - shared fixtures
from tests.test_faults import _deploy_proc, check_invariant, scenario  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")


def _children(pid: int) -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                tree.setdefault(ppid, []).append(int(entry))
    return tree


def connection_sshds(listener: int) -> list[int]:
    """The per-connection sshd processes under the host's listening sshd (monitor and session child),
    not the commands they run: killing them is a connection reset, the listener keeps accepting."""
    tree, found, todo = _children(listener), [], list(_children(listener).get(listener, []))
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "sshd":
                found.append(pid)
                todo += tree.get(pid, [])
    return found


def wait_for_step(state: Path, step: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if step in json.loads(state.read_text() or "{}").get("steps", {}):
                return
        time.sleep(0.05)
    raise AssertionError(f"step {step} never finished")


def test_ssh_reset_mid_deploy_reconnects_and_reruns_the_step(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path
) -> None:
    c, e = scenario
    p = _deploy_proc(write_config(c, tmp_path, None, name="reset"), e)
    state = Path(e["ORCHESTRATOR_HOME"]) / "deployments" / "reset.json"
    wait_for_step(state, "verify-gpu")
    ip = json.loads(state.read_text())["server"]["ip"]
    host = next(h for h in c.hosts if h.ipv4 == ip)
    killed = connection_sshds(host.sshd_pid)
    assert killed, "no open SSH connection to reset"
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, err
    assert "was lost; reconnecting (pinned host key)" in err
    assert "re-running the step on a new connection" in err
    status = json.loads(run_cli("status", "reset", "--json", env=e).stdout)[0]
    assert status["status"] == "deployed" and status["health"]["ok"] is True
    check_invariant("SSH connection reset mid-step: reconnected, step re-run", c, e)
