"""The deployed server a command reaches: from the deployment's state record alone (no config file needed).

Target: the record and the validated config (logs, extend, the paramiko path). SshTarget: only what OpenSSH needs,
read by the light state reader from the config snapshot's `ssh` section, so `orchestrator ssh` and `logs` start
without pydantic (a test checks that both give the same values).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from orchestrator.errors import SSHError, StateError

if TYPE_CHECKING:
    from orchestrator.config import DeploymentConfig
    from orchestrator.state import Deployment
    from orchestrator.state_doc import DeploymentView


# `NAME/rI`: replica I of a fleet, as `status` names its rows; a plain NAME is the server (a fleet's lowest-numbered
# replica; `logs` and `extend` take it as every replica).
REPLICA_REF = re.compile(r"^(?P<name>[^/]+)/r(?P<index>[1-9][0-9]*)$")


def split_ref(ref: str) -> tuple[str, int | None]:
    """(deployment name, replica index or None) of a command's NAME argument."""
    m = REPLICA_REF.match(ref)
    return (m["name"], int(m["index"])) if m else (ref, None)


def known_as(name: str, index: int | None) -> str:
    """The name a server's pinned key is filed under in known_hosts: the deployment's for one server and a
    fleet's replica 1, `NAME-rI` for replica I >= 2 (StepContext.host_name files them so at deploy)."""
    return name if (index or 1) == 1 else f"{name}-r{index}"


class _Replica(Protocol):
    @property
    def server(self) -> _Server | None: ...


def _pick(
    name: str, index: int | None, server: _Server | None, replicas: Sequence[tuple[int, _Replica]]
) -> tuple[int | None, _Server | None]:
    """The server ``NAME[/rI]`` means: one server's, or the fleet's replica I (default: its lowest-numbered one,
    r1 unless r1 was removed), with its number (None for one server); an unknown replica is a StateError (exit 11)
    that lists the replicas there are."""
    if not replicas:
        if index not in (None, 1):
            raise not_a_fleet(name, index)
        return None, server
    wanted = index or min(number for number, _ in replicas)
    for number, rec in replicas:
        if number == wanted:
            return number, rec.server
    raise no_replica(name, wanted, [n for n, _ in replicas])


def not_a_fleet(name: str, index: int) -> StateError:
    """NAME/rI (I > 1) of a single-server deployment (exit 11)."""
    return StateError(f"deployment {name!r} is one server, not a fleet: it has no replica r{index}",
                      f"use `{name}` (or `{name}/r1`)")  # fmt: skip


def no_replica(name: str, index: int, numbers: Sequence[int]) -> StateError:
    """NAME/rI of a fleet without replica I (exit 11), with the replicas there are."""
    there = ", ".join(f"{name}/r{n}" for n in numbers)
    return StateError(f"deployment {name!r} has no replica r{index}", f"its replicas: {there}")


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
    replica: int | None = None  # NAME/rI: a fleet's replica I

    @property
    def known_as(self) -> str:
        return known_as(self.dep.name, self.replica)

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


def load_target(ref: str) -> Target:
    """The server ``ref`` (NAME, or NAME/rI for a fleet's replica I) with its pinned host key. Unknown deployment
    or replica: StateError (exit 11); no server, no IP or no pinned key: SSHError (exit 5) with a hint — a key is
    never trusted on first use here."""
    return target_of(load_deployment(split_ref(ref)[0]), ref)


def target_of(dep: Deployment, ref: str) -> Target:
    """load_target for a record already read (the same checks and errors)."""
    name, index = split_ref(ref)
    replica, srv = _pick(name, index, dep.server, [(r.index, r) for r in dep.replicas])
    ip, host_key = _reachable(ref, dep.config_path, srv)
    return Target(dep=dep, cfg=config_of(dep), ip=ip, host_key=host_key, replica=replica)


def load_deployment(name: str) -> Deployment:
    """Deployment ``name``'s record; an unknown one is a StateError (exit 11)."""
    from orchestrator.state import StateStore

    store = StateStore()
    dep = store.load(name)
    if dep is None:
        raise StateError(f"no deployment named {name!r} in {store.dir}", "see `orchestrator status`")
    return dep


def check_reachable(ref: str, dep: Deployment, srv: _Server | None) -> None:
    """The SSHError (exit 5) load_target raises for a server with no IP or no pinned host key, for each replica of
    a fleet a command goes through."""
    _reachable(ref, dep.config_path, srv)


class SshTarget(NamedTuple):
    """What OpenSSH needs to reach a deployment's server with its pinned key."""

    name: str  # the deployment
    ip: str
    host_key: str
    user: str
    port: int
    private_key: str  # as configured (ssh.private_key); private_key_path expands it like SshConfig does
    known_as: str = ""  # its known_hosts entry's name (known_as()); "" = the deployment's

    @property
    def private_key_path(self) -> Path:
        return Path(self.private_key).expanduser()


SNAPSHOT_SSH_KEYS = ("user", "port", "private_key")  # SshConfig's fields the snapshot (model_dump) always has


def load_ssh_target(ref: str) -> SshTarget:
    """As load_target (same errors), without pydantic when the state's config snapshot has its `ssh` section; a
    record without one (an older state file) goes the validated way, through the config file."""
    light, _ = load_light_target(ref)
    return light if light is not None else ssh_target_of(load_target(ref))


def read_view(name: str) -> DeploymentView:
    """Deployment ``name``'s record as the read-only commands see it (no pydantic); unknown: StateError (exit 11)."""
    from orchestrator.state_doc import StateReader

    reader = StateReader()
    view = reader.load(name)
    if view is None:
        raise StateError(f"no deployment named {name!r} in {reader.dir}", "see `orchestrator status`")
    return view


def load_light_target(ref: str, view: DeploymentView | None = None) -> tuple[SshTarget | None, dict[str, Any]]:
    """The SshTarget read from the config snapshot without pydantic (None where the snapshot lacks its `ssh`
    section), and the snapshot itself ({} when there is none). Unknown deployment, no server, no IP, no pinned
    key: the errors load_target raises."""
    name, index = split_ref(ref)
    view = read_view(name) if view is None else view
    number, srv = _pick(name, index, view.server, [(r.number, r) for r in view.replicas])
    ip, host_key = _reachable(ref, view.config_path, srv)
    return _snapshot_target(name, view.config, ip, host_key, known_as(name, number)), view.config


def _snapshot_target(name: str, snapshot: dict[str, Any], ip: str, host_key: str, alias: str) -> SshTarget | None:
    ssh = snapshot.get("ssh")
    if isinstance(ssh, dict) and all(k in ssh for k in SNAPSHOT_SSH_KEYS):
        user, port, key = ssh["user"], ssh["port"], ssh["private_key"]
        if isinstance(user, str) and isinstance(port, int) and isinstance(key, str):
            return SshTarget(name=name, ip=ip, host_key=host_key, user=user, port=port, private_key=key, known_as=alias)
    return None


def load_fleet_targets(
    ref: str, view: DeploymentView
) -> tuple[list[tuple[int, SshTarget | SSHError]], dict[str, Any]] | None:
    """Each replica's SshTarget (or the SSHError saying why it cannot be reached) when ``ref`` is a whole fleet of
    more than one replica, with the config snapshot; None otherwise (one server, NAME/rI, one replica, or a snapshot
    without its `ssh` section: load_light_target's way)."""
    name, index = split_ref(ref)
    if index is not None or len(view.replicas) < 2:
        return None
    targets: list[tuple[int, SshTarget | SSHError]] = []
    for rec in sorted(view.replicas, key=lambda r: r.number):
        label = f"{name}/r{rec.number}"
        try:
            ip, host_key = _reachable(label, view.config_path, rec.server)
        except SSHError as exc:
            targets.append((rec.number, exc))
            continue
        target = _snapshot_target(name, view.config, ip, host_key, known_as(name, rec.number))
        if target is None:
            return None
        targets.append((rec.number, target))
    return targets, view.config


def ssh_target_of(target: Target) -> SshTarget:
    ssh = target.cfg.ssh
    return SshTarget(
        name=target.dep.name, ip=target.ip, host_key=target.host_key, user=ssh.user, port=ssh.port,
        private_key=ssh.private_key, known_as=target.known_as,
    )  # fmt: skip
