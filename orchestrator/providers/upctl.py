"""UpCloud via the `upctl` CLI: the argv of every call (parsing: upctl_parse.py, failures: upctl_errors.py)."""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import ConfigError
from orchestrator.providers.base import CreateSpec, FirewallRule, NetworkSpec

# --------------------------------------------------------------------------------------------- argv


def _check_name(what: str, value: str) -> str:
    if not value or value.startswith("-") or "\n" in value:
        raise ConfigError(f"invalid {what} {value!r} for upctl", f"give a non-empty {what} not starting with '-'")
    return value


def _check_cidr(cidr: str) -> str:
    """An IPv4 network in CIDR form (upctl derives the family from it; private networks are IPv4 only)."""
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        net = None
    if net is None or net.version != 4 or "/" not in cidr:
        raise ConfigError(
            f"invalid private network range {cidr!r}", "give an IPv4 network in CIDR form, e.g. 10.0.0.0/24"
        )
    return str(net)


def _interfaces(private_networks: Sequence[str]) -> list[str]:
    """`--network` flags: any one replaces the default interfaces (utility, public IPv4, public IPv6), so those are
    named too, in the order of upcloud-go-api's recorded create request (family defaults to IPv4 in upctl)."""
    if not private_networks:
        return []
    args = ["--network", "type=utility", "--network", "type=public", "--network", "family=IPv6,type=public"]
    for uuid in private_networks:
        if not re.fullmatch(r"[0-9A-Za-z-]+|<[^<>,=\n]+>", uuid):  # a UUID (upctl resolves no name here)
            raise ConfigError(f"invalid private network UUID {uuid!r}", "pass the network's UUID")
        args += ["--network", f"type=private,network={uuid}"]
    return args


def _ssh_keys_value(keys: Sequence[str]) -> str:
    """Join keys the way upctl's string-slice flag splits them (one CSV record)."""
    for key in keys:
        if "\n" in key.strip():
            raise ConfigError("an SSH public key must be a single line", "pass one key per entry, or a file path")
        literal = re.match(r"^\S+\s+AAAA", key.strip())
        if literal and not key.strip().startswith("ssh-"):
            raise ConfigError(
                f"upctl only accepts literal SSH keys that start with 'ssh-' (got {key.strip()[:24]}...)",
                "write the key to a file and list the file path instead",
            )
    items = [k.strip() for k in keys if k.strip()]
    if not items:
        return ""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(items)
    return buf.getvalue()


@dataclass(frozen=True)
class UpctlCommands:
    """Builds upctl argv lists. Secrets never appear here: upctl reads them from its environment."""

    binary: str = "upctl"

    def _json(self, *args: str) -> list[str]:
        return [self.binary, *args, "-o", "json"]

    def version(self) -> list[str]:
        return self._json("version")

    def account(self) -> list[str]:
        return self._json("account", "show")

    def plans(self) -> list[str]:
        return self._json("server", "plans")

    def zones(self) -> list[str]:
        return self._json("zone", "list")

    def zone_devices(self) -> list[str]:
        return self._json("zone", "devices")

    def templates(self) -> list[str]:
        # Plain `--template` would list only private templates; `--public` switches to UpCloud's OS images.
        return self._json("storage", "list", "--public", "--template")

    def create(self, spec: CreateSpec) -> list[str]:
        if spec.os_storage_size <= 0:
            raise ConfigError(
                f"os_storage_size must be a positive number of GiB (got {spec.os_storage_size})",
                "GPU plans report storage_size 0, so the OS disk size has to be given explicitly",
            )
        args = [
            "server", "create",
            "--hostname", _check_name("hostname", spec.hostname),
            "--title", spec.title or spec.hostname,
            "--zone", _check_name("zone", spec.zone),
            "--plan", _check_name("plan", spec.plan),
            "--os", _check_name("os template", spec.os),
            "--os-storage-size", str(spec.os_storage_size),
        ]  # fmt: skip
        if ssh_keys := _ssh_keys_value(spec.ssh_keys):
            args += ["--ssh-keys", ssh_keys]
        for key, value in spec.labels:
            if not key or "=" in key:
                raise ConfigError(f"invalid label key {key!r}", "label keys must be non-empty and contain no '='")
            args += ["--label", f"{key}={value}"]
        args += _interfaces(spec.private_networks)
        if spec.wait:
            args.append("--wait")
        if spec.user_data is not None:
            args += ["--user-data", spec.user_data]
        return self._json(*args)

    def show(self, server: str) -> list[str]:
        return self._json("server", "show", _check_name("server", server))

    def list_servers(self) -> list[str]:
        return self._json("server", "list")

    def list_storages(self) -> list[str]:
        return self._json("storage", "list")

    def stop(self, server: str, wait: bool = True) -> list[str]:
        args = ["server", "stop", _check_name("server", server), "--type", "soft"]
        return self._json(*args, *(["--wait"] if wait else []))

    def delete(self, server: str, delete_storages: bool = True) -> list[str]:
        # Prints nothing on success; `-o json` still makes a failure print its {"error": ...} object.
        args = ["server", "delete", _check_name("server", server)]
        return self._json(*args, *(["--delete-storages"] if delete_storages else []))

    def start(self, server: str) -> list[str]:
        return self._json("server", "start", _check_name("server", server))

    def firewall_rules(self, server: str) -> list[str]:
        return self._json("server", "firewall", "show", _check_name("server", server))

    def firewall_create(self, server: str, rule: FirewallRule, position: int | None = None) -> list[str]:
        """Append the rule, or insert it at ``position`` (1 = checked first)."""
        args = ["server", "firewall", "create", _check_name("server", server),
                "--direction", rule.direction, "--action", rule.action]  # fmt: skip
        if position is not None:
            args += ["--position", str(position)]
        if rule.family:
            args += ["--family", rule.family]
        if rule.protocol:
            args += ["--protocol", rule.protocol]
        if rule.source:
            args += ["--src-ipaddress-block", rule.source]
        if rule.source_ports:
            args += ["--source-port-start", str(rule.source_ports[0]), "--source-port-end", str(rule.source_ports[1])]
        if rule.dest_ports:
            args += ["--destination-port-start", str(rule.dest_ports[0]),
                     "--destination-port-end", str(rule.dest_ports[1])]  # fmt: skip
        if rule.comment:
            args += ["--comment", rule.comment]
        return self._json(*args)

    def firewall_delete(self, server: str, position: int | str) -> list[str]:
        """``position`` is a rule's number; a string only as a dry-run placeholder."""
        return self._json("server", "firewall", "delete", _check_name("server", server), "--position", str(position))

    def enable_firewall(self, server: str) -> list[str]:
        return self._json("server", "modify", _check_name("server", server), "--enable-firewall")

    def network_create(self, spec: NetworkSpec) -> list[str]:
        ip_network = f"address={_check_cidr(spec.cidr)},dhcp={'true' if spec.dhcp else 'false'}"
        return self._json(
            "network", "create",
            "--name", _check_name("network name", spec.name),
            "--zone", _check_name("zone", spec.zone),
            "--ip-network", ip_network,
        )  # fmt: skip

    def network_list(self, zone: str | None = None) -> list[str]:
        """Private networks only (upctl's default), of one zone or all."""
        return self._json("network", "list", *(["--zone", _check_name("zone", zone)] if zone else []))

    def network_show(self, network: str) -> list[str]:
        return self._json("network", "show", _check_name("network", network))

    def network_delete(self, network: str) -> list[str]:
        # Prints nothing on success, like `server delete`.
        return self._json("network", "delete", _check_name("network", network))
