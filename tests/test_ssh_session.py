"""SshSession against a real sshd: keepalives are on, a reset connection is re-opened with the same pinned key,
and a host that answers with another key is refused on reconnect."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from mockcloud.cloud import MockCloud
from mockcloud.host_sshd import SSHD
from mockcloud.hosts import new_root
from orchestrator.actions import Connect
from orchestrator.errors import HostKeyMismatch
from orchestrator.transports.ssh import IDLE_WAKE, SshSession
from tests.test_faults_sshfw import reset_connections


@pytest.fixture(scope="module")
def cloud() -> Iterator[MockCloud]:
    if not Path(SSHD).exists():
        pytest.skip(f"{SSHD} missing: apt-get install openssh-server")
    root = new_root("orch-sshsession-")
    mock = MockCloud(root, hosts=1)
    try:
        mock.start()
        mock.hosts[0].authorized_keys.write_text(mock.client_key_pub + "\n")
        yield mock
    finally:
        mock.stop()
        shutil.rmtree(root, ignore_errors=True)


def action(c: MockCloud, pinned: str | None = None) -> Connect:
    h = c.hosts[0]
    return Connect(h.ipv4, h.ssh_port, h.user, str(c.client_key), pinned, 20.0, public_key_file=f"{c.client_key}.pub")


def reset(c: MockCloud, s: SshSession) -> None:
    """Reset the connection (its sshd processes killed) and wait until paramiko has seen it go."""
    assert reset_connections(c.hosts[0].sshd_pid)
    deadline = time.monotonic() + 20
    while s.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not s.connected


def test_keepalive_is_on(cloud: MockCloud) -> None:
    s = SshSession()
    try:
        s.connect(action(cloud))
        transport = s._require()
        assert transport.packetizer._Packetizer__keepalive_interval == 15  # type: ignore[attr-defined]
    finally:
        s.close()


def test_quiet_connection_reader_wakes_once_a_second(cloud: MockCloud) -> None:
    """Once the session is up, paramiko's reader thread waits on the socket IDLE_WAKE at a time (not its own 0.1 s):
    a command after a quiet spell still answers, and on close the thread ends."""
    s = SshSession()
    s.connect(action(cloud))
    transport = s._require()
    try:
        assert transport.sock.gettimeout() == IDLE_WAKE != paramiko.Transport._active_check_timeout
        time.sleep(1.5)
        assert s.run("echo after-a-quiet-spell", 10).stdout.strip() == "after-a-quiet-spell"
    finally:
        s.close()
    transport.join(IDLE_WAKE + 5)
    assert not transport.is_alive()


def test_reset_connection_is_reopened_with_the_pinned_key(cloud: MockCloud) -> None:
    notes: list[str] = []
    s = SshSession(on_retry=notes.append)
    try:
        key = s.connect(action(cloud))
        assert key == cloud.hosts[0].host_key_pub
        assert s.run("echo one", 10).stdout.strip() == "one"
        reset(cloud, s)
        assert s.run("echo two", 10).stdout.strip() == "two"  # the next action reconnects
        assert any("reconnecting (pinned host key)" in n for n in notes)
        assert s.host_key == key
    finally:
        s.close()


def test_reconnect_refuses_another_host_key(cloud: MockCloud) -> None:
    s = SshSession()
    try:
        s.connect(action(cloud))
        assert s._last is not None  # as if the pin were another key: the host "changed" while we were away
        other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherKey0"
        s._last = dataclasses.replace(s._last, pinned_host_key=other)
        reset(cloud, s)
        with pytest.raises(HostKeyMismatch):
            s.run("echo never", 10)
    finally:
        s.close()
