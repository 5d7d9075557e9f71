"""The pinned host key lands in $ORCHESTRATOR_HOME/known_hosts: the real OpenSSH client checks it strictly."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from mockcloud.cloud import MockCloud
from orchestrator.known_hosts import host_field, with_entry, without
from tests.conftest import run_cli
from tests.test_e2e import cloud, env, write_config  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")


def openssh(c: MockCloud, ip: str, known_hosts: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh", "-F", "/dev/null", "-i", str(c.client_key), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
            "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10", "-p", str(c.ssh_port),
            f"{c.user}@{ip}", "echo", "plain-ssh-ok",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_plain_openssh_uses_the_pinned_key(cloud: MockCloud, env: dict[str, str], tmp_path: Path) -> None:
    home = Path(env["ORCHESTRATOR_HOME"])
    known = home / "known_hosts"
    known.parent.mkdir(parents=True, exist_ok=True)
    known.write_text("# the user's own line stays\nexample.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB\n")
    proc = run_cli("deploy", str(write_config(cloud, tmp_path, None, name="kh")), env=env)
    assert proc.returncode == 0, proc.stderr
    srv = json.loads(run_cli("status", "kh", "--json", env=env).stdout)[0]["server"]
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    lines = known.read_text().splitlines()
    assert lines[:2] == ["# the user's own line stays", "example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"]
    assert lines[2:] == [f"{host_field(srv['ip'], cloud.ssh_port)} {srv['host_key']} orchestrator:kh"]

    ok = openssh(cloud, srv["ip"], known)
    assert ok.returncode == 0 and "plain-ssh-ok" in ok.stdout, ok.stderr
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    refused = openssh(cloud, srv["ip"], empty)  # the same strict check without our file: refused
    assert refused.returncode == 255 and "Host key verification failed" in refused.stderr

    again = run_cli("deploy", str(write_config(cloud, tmp_path, None, name="kh")), env=env)
    assert again.returncode == 0, again.stderr
    assert known.read_text().splitlines() == lines  # re-running replaces, never duplicates

    down = run_cli("teardown", "kh", "--yes", env=env)
    assert down.returncode == 0, down.stderr
    assert known.read_text().splitlines() == lines[:2]


def test_entries_per_deployment() -> None:
    one = with_entry("", "a", "203.0.113.5", 22, "ssh-ed25519 AAAA1")
    two = with_entry(one, "b", "203.0.113.6", 2222, "ssh-ed25519 AAAA2")
    assert two.splitlines() == [
        "203.0.113.5 ssh-ed25519 AAAA1 orchestrator:a",
        "[203.0.113.6]:2222 ssh-ed25519 AAAA2 orchestrator:b",
    ]
    moved = with_entry(two, "a", "203.0.113.9", 22, "ssh-ed25519 AAAA3")
    assert moved.splitlines()[-1] == "203.0.113.9 ssh-ed25519 AAAA3 orchestrator:a" and "AAAA1" not in moved
    assert without(moved, "b") == ["203.0.113.9 ssh-ed25519 AAAA3 orchestrator:a"]
    assert host_field("2001:db8::1", 22) == "2001:db8::1"
    assert host_field("2001:db8::1", 2222) == "[2001:db8::1]:2222"
