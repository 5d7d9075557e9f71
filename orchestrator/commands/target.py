"""The deployed server a command reaches: from the deployment's state record alone (no config file needed).

Target: the record and the validated config (logs, extend, the paramiko path). SshTarget: only what OpenSSH needs,
read by the light state reader from the config snapshot's `ssh` section, so `orchestrator ssh` and `logs` start
without pydantic (a test checks that both give the same values).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from orchestrator.errors import SSHError, StateError

if TYPE_CHECKING:
    from orchestrator.config import DeploymentConfig
    from orchestrator.state import Deployment


class _Server(Protocol):
    @property
    def ip(self) -> str | None: ...
    @property
    def host_key(self) -> str | None: ...


@dataclass(frozen=True)
class Target:
    dep: Deployment
    cfg: DeploymentConfig
    ip: str
    host_key: str  # "ssh-ed25519 AAAA...": pinned at the first deploy; never learnt here

    @property
    def port(self) -> int:
        return self.cfg.ssh.port

    @property
    def user(self) -> str:
        return self.cfg.ssh.user


def config_of(dep: Deployment) -> DeploymentConfig:
    """The deployment's config: the snapshot in its state record, else the file it was deployed from."""
    from orchestrator.config import DeploymentConfig, load_config

    if dep.config:
        return DeploymentConfig.model_validate(dep.config)
    return load_config(dep.config_path, check_files=False)


def _reachable(name: str, config_path: str, srv: _Server | None) -> tuple[str, str]:
    """(ip, pinned host key), or the SSHError (exit 5) that says why the server cannot be reached safely."""
    if srv is None or not srv.ip:
        raise SSHError(
            f"deployment {name!r} has no server with an IP address in local state",
            f"deploy it first: orchestrator deploy {config_path}",
        )
    if not srv.host_key:
        raise SSHError(
            f"deployment {name!r} has no pinned host key: refusing to trust the server's key on first use",
            f"pin it with a redeploy, which connects and records it: orchestrator redeploy {config_path}",
        )
    return srv.ip, srv.host_key


def load_target(name: str) -> Target:
    """The deployment's server with its pinned host key. Unknown deployment: StateError (exit 11); no server,
    no IP or no pinned key: SSHError (exit 5) with a hint — a key is never trusted on first use here."""
    from orchestrator.state import StateStore

    store = StateStore()
    dep = store.load(name)
    if dep is None:
        raise StateError(f"no deployment named {name!r} in {store.dir}", "see `orchestrator status`")
    first = dep.replicas[0].server if dep.replicas else None  # a fleet: replica 1 (no --replica option yet)
    ip, host_key = _reachable(name, dep.config_path, dep.server or first)
    return Target(dep=dep, cfg=config_of(dep), ip=ip, host_key=host_key)


class SshTarget(NamedTuple):
    """What OpenSSH needs to reach a deployment's server with its pinned key."""

    name: str
    ip: str
    host_key: str
    user: str
    port: int
    private_key: str  # as configured (ssh.private_key); private_key_path expands it like SshConfig does

    @property
    def private_key_path(self) -> Path:
        return Path(self.private_key).expanduser()


SNAPSHOT_SSH_KEYS = ("user", "port", "private_key")  # SshConfig's fields the snapshot (model_dump) always has


def load_ssh_target(name: str) -> SshTarget:
    """As load_target (same errors), without pydantic when the state's config snapshot has its `ssh` section; a
    record without one (an older state file) goes the validated way, through the config file."""
    light, _ = load_light_target(name)
    return light if light is not None else ssh_target_of(load_target(name))


def load_light_target(name: str) -> tuple[SshTarget | None, dict[str, Any]]:
    """The SshTarget read from the config snapshot without pydantic (None where the snapshot lacks its `ssh`
    section), and the snapshot itself ({} when there is none). Unknown deployment, no server, no IP, no pinned
    key: the errors load_target raises."""
    from orchestrator.state_doc import StateReader

    reader = StateReader()
    view = reader.load(name)
    if view is None:
        raise StateError(f"no deployment named {name!r} in {reader.dir}", "see `orchestrator status`")
    first = view.replicas[0].server if view.replicas else None  # a fleet: replica 1 (no --replica option yet)
    ip, host_key = _reachable(name, view.config_path, view.server or first)
    ssh = view.config.get("ssh")
    if isinstance(ssh, dict) and all(k in ssh for k in SNAPSHOT_SSH_KEYS):
        user, port, key = ssh["user"], ssh["port"], ssh["private_key"]
        if isinstance(user, str) and isinstance(port, int) and isinstance(key, str):
            target = SshTarget(name=name, ip=ip, host_key=host_key, user=user, port=port, private_key=key)
            return target, view.config
    return None, view.config


def ssh_target_of(target: Target) -> SshTarget:
    ssh = target.cfg.ssh
    return SshTarget(
        name=target.dep.name, ip=target.ip, host_key=target.host_key, user=ssh.user, port=ssh.port,
        private_key=ssh.private_key,
    )  # fmt: skip
