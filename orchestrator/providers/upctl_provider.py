"""The ``Provider`` for UpCloud through `upctl`: argv from upctl.py, parsers from upctl_parse.py, failures mapped by
upctl_errors.py. Which calls change the cloud (``mutates``) and how long they may take is decided here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from orchestrator.actions import Local, Result
from orchestrator.errors import ProviderError
from orchestrator.providers import upctl_parse as parse
from orchestrator.providers.base import (
    CreateSpec,
    FirewallRule,
    NetworkInfo,
    NetworkSpec,
    PlanInfo,
    ServerInfo,
    TemplateInfo,
)
from orchestrator.providers.provider import Call, FirewallRecord
from orchestrator.providers.upctl import UpctlCommands
from orchestrator.providers.upctl_errors import map_failure, wait_warning

T = TypeVar("T")
DEFAULT_TIMEOUT = 300.0


def _fail(action: Local, r: Result) -> ProviderError:
    return map_failure(action.argv, r.rc, r.stdout, r.stderr)


def _nothing(_stdout: str) -> None:
    return None


@dataclass(frozen=True)
class UpctlProvider:
    """UpCloud via the `upctl` binary (credentials stay in its environment, never in argv)."""

    binary: str = "upctl"
    commands: UpctlCommands = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "commands", UpctlCommands(self.binary))

    def _call(
        self,
        argv: list[str],
        purpose: str,
        read: Callable[[str], T],
        *,
        mutates: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Call[T]:
        return Call(Local(tuple(argv), purpose, timeout=timeout, mutates=mutates), read, _fail)

    # ------------------------------------------------------------------------------ catalogue

    def plans(self, purpose: str = "list plans") -> Call[list[PlanInfo]]:
        return self._call(self.commands.plans(), purpose, parse.parse_plans)

    def zones(self, purpose: str = "check the zone") -> Call[list[str]]:
        return self._call(self.commands.zones(), purpose, parse.parse_zones)

    def zone_devices(self, purpose: str = "check GPU stock in the zone") -> Call[dict[str, dict[str, int]]]:
        return self._call(self.commands.zone_devices(), purpose, parse.parse_zone_devices)

    def templates(self, purpose: str = "resolve the OS template") -> Call[list[TemplateInfo]]:
        return self._call(self.commands.templates(), purpose, parse.parse_templates)

    # ------------------------------------------------------------------------------ servers

    def list_servers(self, purpose: str = "list servers") -> Call[list[ServerInfo]]:
        return self._call(self.commands.list_servers(), purpose, parse.parse_server_list)

    def show(self, server: str, purpose: str = "server state") -> Call[ServerInfo]:
        return self._call(self.commands.show(server), purpose, parse.parse_server)

    def create(self, spec: CreateSpec, purpose: str = "create the server", timeout: float = 1200.0) -> Call[ServerInfo]:
        return self._call(self.commands.create(spec), purpose, parse.parse_server, mutates=True, timeout=timeout)

    def start(self, server: str, purpose: str = "start the server") -> Call[None]:
        return self._call(self.commands.start(server), purpose, _nothing, mutates=True)

    def stop(
        self, server: str, purpose: str = "stop the server", wait: bool = True, timeout: float = 1200.0
    ) -> Call[None]:
        return self._call(self.commands.stop(server, wait=wait), purpose, _nothing, mutates=True, timeout=timeout)

    def delete(
        self,
        server: str,
        purpose: str = "delete the server and its storages",
        delete_storages: bool = True,
        timeout: float = 600.0,
    ) -> Call[None]:
        argv = self.commands.delete(server, delete_storages=delete_storages)
        return self._call(argv, purpose, _nothing, mutates=True, timeout=timeout)

    def list_storages(self, purpose: str = "list storages") -> Call[list[str]]:
        return self._call(self.commands.list_storages(), purpose, parse.parse_storage_uuids)

    def wait_warning(self, r: Result) -> str | None:
        return wait_warning(r.stderr)

    # ------------------------------------------------------------------------------ firewall

    def firewall_rules(self, server: str, purpose: str = "current firewall rules") -> Call[list[FirewallRecord]]:
        return self._call(self.commands.firewall_rules(server), purpose, parse.parse_firewall_rules)

    def firewall_create(
        self, server: str, rule: FirewallRule, purpose: str = "add a firewall rule", position: int | None = None
    ) -> Call[None]:
        argv = self.commands.firewall_create(server, rule, position=position)
        return self._call(argv, purpose, _nothing, mutates=True)

    def firewall_delete(self, server: str, position: int | str, purpose: str = "remove an old rule") -> Call[None]:
        return self._call(self.commands.firewall_delete(server, position), purpose, _nothing, mutates=True)

    def enable_firewall(self, server: str, purpose: str = "turn the firewall on") -> Call[None]:
        return self._call(self.commands.enable_firewall(server), purpose, _nothing, mutates=True)

    # ------------------------------------------------------------------------------ private networks

    def network_create(self, spec: NetworkSpec, purpose: str = "create a private network") -> Call[NetworkInfo]:
        return self._call(self.commands.network_create(spec), purpose, parse.parse_network, mutates=True)

    def network_list(self, purpose: str = "list private networks", zone: str | None = None) -> Call[list[NetworkInfo]]:
        return self._call(self.commands.network_list(zone), purpose, parse.parse_network_list)

    def network_show(self, network: str, purpose: str = "private network state") -> Call[NetworkInfo]:
        return self._call(self.commands.network_show(network), purpose, parse.parse_network)

    def network_delete(self, network: str, purpose: str = "delete the private network") -> Call[None]:
        return self._call(self.commands.network_delete(network), purpose, _nothing, mutates=True)
