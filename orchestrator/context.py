"""What a step sees: the config, the deployment's state record, secrets by name, and a way to report."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from orchestrator.actions import Action, Result
from orchestrator.config import DeploymentConfig
from orchestrator.engines import engine_for
from orchestrator.engines.base import Engine
from orchestrator.providers.provider import Provider
from orchestrator.state import Deployment, StateStore

StepGen = Generator[Action, Result, str | None]

# ctx.facts keys that a command sets before the first step (commands/specs.py) and a step reads.
RESTART_FACT = "restart"  # steps/engine.py: restart the engine even when its config is unchanged
EXISTING_SERVER_ONLY = "existing_server_only"  # steps/provision.py: a gone server is an error, never a new server
NETWORK_FACT = "cluster_network"  # steps/provision.py: the private network's UUID a cluster's servers attach to
CREATED_FACT = "created_server"  # StepContext.mark_created / created_this_run
GONE_FACT = "server_found_gone"  # StepContext.mark_found_gone / found_gone (teardown)


def upctl_binary() -> str:
    return os.environ.get("ORCHESTRATOR_UPCTL") or "upctl"


def default_provider() -> Provider:
    """The one place a provider is made: UpCloud through `upctl` ($ORCHESTRATOR_UPCTL or upctl on PATH)."""
    from orchestrator.providers.upctl_provider import UpctlProvider

    return UpctlProvider(upctl_binary())


@dataclass
class StepContext:
    """What a step sees (the module docstring says what each part is for)."""

    cfg: DeploymentConfig
    dep: Deployment
    store: StateStore | None  # None in dry-run: nothing is persisted
    secrets: dict[str, str] = field(default_factory=dict)
    notify: Callable[[str], None] = lambda _msg: None
    provider: Provider = field(default_factory=default_provider)
    facts: dict[str, object] = field(default_factory=dict)  # values learnt during this run (plan, gpu...)
    # A fleet's server (config `replicas` > 1, orchestrator/fleet.py): its 1-based index; None for one server.
    replica: int | None = None

    def __post_init__(self) -> None:
        self.engine: Engine = engine_for(self.cfg)

    def save(self) -> None:
        if self.store is not None:
            self.store.save(self.dep)

    @property
    def host_name(self) -> str:
        """The name the server's pinned key is filed under in known_hosts: the deployment's, `NAME-rI` for a
        fleet's replica I >= 2."""
        return self.cfg.name if (self.replica or 1) == 1 else f"{self.cfg.name}-r{self.replica}"

    @property
    def ip(self) -> str:
        """The server's public IPv4, or a placeholder while it does not exist yet (dry-run)."""
        if self.dep.server and self.dep.server.ip:
            return self.dep.server.ip
        return "<server.ip>"

    @property
    def server_ref(self) -> str:
        return self.dep.server.uuid if self.dep.server else "<server.uuid>"

    def mark_created(self) -> None:
        """provision: this run created the server (a dry run: would create it), so it has no firewall rules yet."""
        self.facts[CREATED_FACT] = self.server_ref

    @property
    def created_this_run(self) -> bool:
        """Whether this run created the server now recorded (by UUID: a fleet's other servers never match)."""
        return self.facts.get(CREATED_FACT) == self.server_ref

    def mark_found_gone(self) -> None:
        """teardown: the provider no longer knows the recorded server (deleted outside orchestrator)."""
        self.facts[GONE_FACT] = True

    @property
    def found_gone(self) -> bool:
        """Whether this run found the recorded server already gone (the teardown summary says so, not "deleted")."""
        return bool(self.facts.get(GONE_FACT))
