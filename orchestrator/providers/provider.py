"""The provider interface steps speak: each operation is a ``Call`` (the action to run, and how to read its result).

Plans stay data: a step yields ``call.action`` to the runner (which runs it through an executor, or records it in
a dry-run) and hands the ``Result`` back to ``call.parse`` / ``call.check``. A failed call is mapped to the
project's errors once, here at the boundary (``ServerNotFound``, ``CapacityError``, ``CredentialsError``...),
so steps never see a provider's exit codes, argv or JSON. A second provider is one module implementing
``Provider``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from orchestrator.actions import Local, Result
from orchestrator.errors import ProviderError
from orchestrator.providers.base import (
    CreateSpec,
    FirewallRule,
    NetworkInfo,
    NetworkSpec,
    PlanInfo,
    ServerInfo,
    TemplateInfo,
)

T = TypeVar("T")
FirewallRecord = dict[str, str]  # one existing rule as the API stores it (direction, position, ports as strings)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One provider operation: ``action`` to yield, ``parse`` for its answer, failures mapped by ``fail``."""

    action: Local
    read: Callable[[str], T]  # stdout of a successful run -> the value
    fail: Callable[[Local, Result], ProviderError]

    def error(self, r: Result) -> ProviderError | None:
        """The mapped error of a failed, known result; None when it succeeded (or is unknown: dry-run)."""
        return self.fail(self.action, r) if r.known and r.rc != 0 else None

    def check(self, r: Result) -> Result:
        """Raise the mapped error when the call failed; else hand the result back."""
        err = self.error(r)
        if err is not None:
            raise err
        return r

    def parse(self, r: Result) -> T:
        """The value a successful call returned (raises the mapped error on failure). Only for known results."""
        return self.read(self.check(r).stdout)


class Provider(Protocol):
    """What the steps need from a cloud. Server arguments are UUIDs (or a dry-run placeholder)."""

    def plans(self, purpose: str = ...) -> Call[list[PlanInfo]]: ...
    def zones(self, purpose: str = ...) -> Call[list[str]]: ...
    def zone_devices(self, purpose: str = ...) -> Call[dict[str, dict[str, int]]]: ...
    def templates(self, purpose: str = ...) -> Call[list[TemplateInfo]]: ...

    def list_servers(self, purpose: str = ...) -> Call[list[ServerInfo]]: ...
    def show(self, server: str, purpose: str = ...) -> Call[ServerInfo]: ...
    def create(self, spec: CreateSpec, purpose: str = ..., timeout: float = ...) -> Call[ServerInfo]: ...
    def start(self, server: str, purpose: str = ...) -> Call[None]: ...
    def stop(self, server: str, purpose: str = ..., wait: bool = ..., timeout: float = ...) -> Call[None]: ...
    def delete(
        self, server: str, purpose: str = ..., delete_storages: bool = ..., timeout: float = ...
    ) -> Call[None]: ...
    def list_storages(self, purpose: str = ...) -> Call[list[str]]: ...
    def wait_warning(self, r: Result) -> str | None:
        """A warning the create printed while still succeeding (its own wait gave up), if any."""
        ...

    def firewall_rules(self, server: str, purpose: str = ...) -> Call[list[FirewallRecord]]: ...
    def firewall_create(
        self, server: str, rule: FirewallRule, purpose: str = ..., position: int | None = ...
    ) -> Call[None]: ...
    def firewall_delete(self, server: str, position: int | str, purpose: str = ...) -> Call[None]: ...
    def enable_firewall(self, server: str, purpose: str = ...) -> Call[None]: ...

    def network_create(self, spec: NetworkSpec, purpose: str = ...) -> Call[NetworkInfo]: ...
    def network_list(self, purpose: str = ..., zone: str | None = ...) -> Call[list[NetworkInfo]]: ...
    def network_show(self, network: str, purpose: str = ...) -> Call[NetworkInfo]: ...
    def network_delete(self, network: str, purpose: str = ...) -> Call[None]: ...
