"""SSH keys as people have them: a passphrase-protected key in ssh-agent, or decrypted with a passphrase from
the environment; a wrong or missing passphrase stops the run in the preflight, before any server exists."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mockcloud.cloud import MockCloud
from mockcloud.upctl import read_state
from tests.conftest import run_cli
from tests.test_e2e import cloud, env, write_config  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")

PASSPHRASE = "correct horse battery staple"


def encrypted_key(tmp_path: Path, passphrase: str = PASSPHRASE) -> Path:
    key = tmp_path / "keys" / "id_enc"
    key.parent.mkdir(mode=0o700)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "enc@test", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    return key


def config_with_key(c: MockCloud, tmp_path: Path, name: str, key: Path) -> Path:
    cfg = write_config(c, tmp_path, None, name=name)
    data = yaml.safe_load(cfg.read_text())
    data["ssh"]["private_key"] = str(key)
    cfg.write_text(yaml.safe_dump(data))
    return cfg


def servers(c: MockCloud) -> list[object]:
    found = read_state(c.upctl_home).get("servers") or {}
    return list(found.values() if isinstance(found, dict) else found)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[str]:
    """A real ssh-agent on a socket of this test's own, stopped by its PID afterwards."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sock.exists(), "ssh-agent did not create its socket"
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def ssh_add(sock: str, key: Path, passphrase: str, tmp_path: Path) -> None:
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\nprintf '%s\\n' '{passphrase}'\n")
    askpass.chmod(0o700)
    env = dict(os.environ, SSH_AUTH_SOCK=sock, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    added = subprocess.run(["ssh-add", str(key)], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    listed = subprocess.run(["ssh-add", "-L"], env=env, capture_output=True, text=True, check=True)
    assert Path(f"{key}.pub").read_text().split()[1] in listed.stdout


def test_passphrase_key_in_agent_deploys(
    cloud: MockCloud, env: dict[str, str], tmp_path: Path, agent: str
) -> None:
    key = encrypted_key(tmp_path)
    ssh_add(agent, key, PASSPHRASE, tmp_path)
    cfg = config_with_key(cloud, tmp_path, "agentkey", key)
    e = {k: v for k, v in env.items() if k != "ORCHESTRATOR_SSH_PASSPHRASE"} | {"SSH_AUTH_SOCK": agent}
    proc = run_cli("deploy", str(cfg), env=e)
    assert proc.returncode == 0, proc.stderr
    assert "connect: ok" in proc.stderr and "health: ok" in proc.stderr
    down = run_cli("teardown", "agentkey", "--yes", env=e)
    assert down.returncode == 0, down.stderr
    assert servers(cloud) == []


def test_passphrase_from_env_deploys_without_agent(cloud: MockCloud, env: dict[str, str], tmp_path: Path) -> None:
    key = encrypted_key(tmp_path)
    cfg = config_with_key(cloud, tmp_path, "envkey", key)
    e = env | {"ORCHESTRATOR_SSH_PASSPHRASE": PASSPHRASE}
    proc = run_cli("deploy", str(cfg), "--debug", env=e)
    assert proc.returncode == 0, proc.stderr
    assert "connect: ok" in proc.stderr
    assert PASSPHRASE not in proc.stdout + proc.stderr
    state = (Path(e["ORCHESTRATOR_HOME"]) / "deployments" / "envkey.json").read_text()
    assert PASSPHRASE not in state
    down = run_cli("teardown", "envkey", "--yes", env=e)
    assert down.returncode == 0, down.stderr


@pytest.mark.parametrize(
    "passphrase, words",
    [("not the passphrase", "wrong passphrase"), (None, "passphrase-protected and no passphrase was given")],
    ids=["wrong", "missing"],
)
def test_bad_passphrase_fails_in_preflight(
    cloud: MockCloud, env: dict[str, str], tmp_path: Path, passphrase: str | None, words: str
) -> None:
    key = encrypted_key(tmp_path)
    cfg = config_with_key(cloud, tmp_path, "badpass", key)
    e = dict(env)
    if passphrase is not None:
        e["ORCHESTRATOR_SSH_PASSPHRASE"] = passphrase
    proc = run_cli("deploy", str(cfg), env=e)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "ssh-add" in proc.stderr
    assert servers(cloud) == []
    assert not (Path(e["ORCHESTRATOR_HOME"]) / "deployments" / "badpass.json").exists()


def test_agent_without_the_matching_key_is_not_enough(
    cloud: MockCloud, env: dict[str, str], tmp_path: Path, agent: str
) -> None:
    """The agent holds some other key: the encrypted key file is still the one to use, and it cannot be opened."""
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    ssh_add(agent, other, "", tmp_path)
    cfg = config_with_key(cloud, tmp_path, "otherkey", encrypted_key(tmp_path))
    proc = run_cli("deploy", str(cfg), env=env | {"SSH_AUTH_SOCK": agent})
    assert proc.returncode == 2, proc.stderr
    assert "passphrase-protected" in proc.stderr and servers(cloud) == []
