"""Fault scenarios for SSH and the firewall: a connection reset mid-step, the operator's address changed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mockcloud import upctl_firewall
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


def reset_connections(listener: int) -> list[int]:
    """A connection reset: freeze each per-connection sshd (so none forks a child that would outlive its killed
    parent, re-parented to init and still holding the socket), then SIGKILL the whole frozen tree."""
    frozen: list[int] = []
    for _ in range(3):  # a child forked between the scan and the stop is found by the next scan
        for pid in connection_sshds(listener):
            if pid not in frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    frozen.append(pid)
        time.sleep(0.05)
    for pid in reversed(frozen):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return frozen


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
    assert reset_connections(host.sshd_pid), "no open SSH connection to reset"
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, err
    assert "was lost; reconnecting (pinned host key)" in err
    assert "re-running the step on a new connection" in err
    status = json.loads(run_cli("status", "reset", "--json", env=e).stdout)[0]
    assert status["status"] == "deployed" and status["health"]["ok"] is True
    check_invariant("SSH connection reset mid-step: reconnected, step re-run", c, e)


def _upctl(e: dict[str, str], *args: str) -> str:
    proc = subprocess.run(["upctl", *args, "-o", "json"], env=e, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _rules(e: dict[str, str], uuid: str) -> list[dict[str, str]]:
    return json.loads(_upctl(e, "server", "firewall", "show", uuid))["firewall_rules"] or []


def _reachable(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=2) as conn:
            return conn.recv(8).startswith(b"SSH-")
    except OSError:
        return False


OLD_ADDRESS = "198.51.100.7"  # the operator's address when the rules were made (TEST-NET-2)


@pytest.mark.parametrize("command", ["redeploy", "deploy"])
def test_operator_address_changed_repairs_the_allow_rule_before_ssh(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path, command: str
) -> None:
    c, e = scenario
    if c.hosts[0].netns is None or upctl_firewall.nft() is None:
        pytest.skip("the fake firewall filters only mock hosts in network namespaces (root) with nft installed")
    cfg = write_config(c, tmp_path, None, name="moved")
    first = run_cli("deploy", str(cfg), env=e)
    assert first.returncode == 0, first.stderr
    srv = json.loads(run_cli("status", "moved", "--json", env=e).stdout)[0]["server"]
    rules = _rules(e, srv["uuid"])
    me = rules[0]["source_address_start"]  # what the server saw SSH come from: this machine on the bridge
    assert me != OLD_ADDRESS and _reachable(srv["ip"], c.ssh_port)
    # The recorded allow rules now name another /32: the operator "moved" (same rules, other source).
    ours = [r for r in rules if r.get("source_address_start") == me]
    assert [r["destination_port_start"] for r in ours] == ["22", "8000"]
    for r in sorted(ours, key=lambda r: -int(r["position"])):
        _upctl(e, "server", "firewall", "delete", srv["uuid"], "--position", r["position"])
    for pos, r in enumerate(ours, start=1):
        _upctl(
            e, "server", "firewall", "create", srv["uuid"], "--position", str(pos), "--direction", "in",
            "--action", "accept", "--family", "IPv4", "--protocol", "tcp",
            "--src-ipaddress-block", f"{OLD_ADDRESS}/32", "--destination-port-start", r["destination_port_start"],
            "--destination-port-end", r["destination_port_end"], "--comment", r.get("comment", ""),
        )  # fmt: skip
    assert not _reachable(srv["ip"], c.ssh_port), "the fake firewall must really drop SSH from here now"

    proc = run_cli(command, str(cfg), env=e)
    assert proc.returncode == 0, proc.stderr
    assert "your address has probably changed" in proc.stderr and "OPENING SSH (port 22) TO ANY ADDRESS" in proc.stderr
    assert "firewall-access: ok" in proc.stderr
    after = _rules(e, srv["uuid"])
    assert [(r["source_address_start"], r["destination_port_start"]) for r in after[:2]] == [(me, "22"), (me, "8000")]
    assert not any("temporary" in r.get("comment", "") for r in after)
    assert not any(OLD_ADDRESS in json.dumps(r) for r in after)
    assert _reachable(srv["ip"], c.ssh_port)
    check_invariant(f"operator address changed before {command}: allow rule repaired via the API", c, e)
