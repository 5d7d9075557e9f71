"""The deployed server a command reaches: from the deployment's state record alone (no config file needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.errors import SSHError, StateError

if TYPE_CHECKING:
    from orchestrator.config import DeploymentConfig
    from orchestrator.state import Deployment


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


def load_target(name: str) -> Target:
    """The deployment's server with its pinned host key. Unknown deployment: StateError (exit 11); no server,
    no IP or no pinned key: SSHError (exit 5) with a hint — a key is never trusted on first use here."""
    from orchestrator.state import StateStore

    store = StateStore()
    dep = store.load(name)
    if dep is None:
        raise StateError(f"no deployment named {name!r} in {store.dir}", "see `orchestrator status`")
    srv = dep.server
    if srv is None or not srv.ip:
        raise SSHError(
            f"deployment {name!r} has no server with an IP address in local state",
            f"deploy it first: orchestrator deploy {dep.config_path}",
        )
    if not srv.host_key:
        raise SSHError(
            f"deployment {name!r} has no pinned host key: refusing to trust the server's key on first use",
            f"pin it with a redeploy, which connects and records it: orchestrator redeploy {dep.config_path}",
        )
    return Target(dep=dep, cfg=config_of(dep), ip=srv.ip, host_key=srv.host_key)
