"""Parsers for upctl's JSON output (strings for numbers, "yes"/"no", shapes that changed between versions)."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.errors import ProviderError
from orchestrator.providers.base import NetworkInfo, PlanInfo, ServerInfo, TemplateInfo
from orchestrator.providers.catalogue import check_gpu_availability, check_zone, resolve_template, select_plan

__all__ = ["check_gpu_availability", "check_zone", "resolve_template", "select_plan"]  # their old home

MIN_UPCTL_VERSION = "3.21.0"  # first release with `zone devices`
_SNIPPET = 200


def snippet(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."


def _load(stdout: str, what: str) -> Any:
    if not stdout.strip():
        raise ProviderError(
            f"upctl printed no JSON for {what}",
            "the upctl call must include `-o json`; check `upctl version` works",
        )
    try:
        return json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise ProviderError(
            f"upctl printed malformed JSON for {what} ({exc.msg}): {snippet(stdout)!r}",
            f"check that `upctl` is UpCloud's CLI, version {MIN_UPCTL_VERSION} or newer",
        ) from exc


def _shape_error(what: str, data: Any) -> ProviderError:
    return ProviderError(
        f"unexpected JSON shape from upctl for {what}: {snippet(json.dumps(data))!r}",
        f"upgrade upctl to {MIN_UPCTL_VERSION} or newer",
    )


def _int(value: Any) -> int:
    """Plan JSON has real numbers; server JSON has numeric strings ("8")."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return 0


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _listing(stdout: str, what: str, key: str) -> list[Any]:
    """A `... list -o json` answer: ``{key: [...]}`` (or the bare list); ``null`` means none."""
    data = _load(stdout, what)
    if isinstance(data, dict):
        data = data.get(key)
    if data is None:
        return []
    if not isinstance(data, list):
        raise _shape_error(what, data)
    return data


def parse_plans(stdout: str) -> list[PlanInfo]:
    """`server plans -o json`: a bare array (v3.9+) or the older ``{"plans": [...]}``."""
    data = _load(stdout, "server plans")
    if isinstance(data, dict) and isinstance(data.get("plans"), list):
        data = data["plans"]
    if not isinstance(data, list):
        raise _shape_error("server plans", data)
    return [
        PlanInfo(
            name=as_str(p.get("name")),
            cores=_int(p.get("core_number")),
            memory_mib=_int(p.get("memory_amount")),
            storage_size=_int(p.get("storage_size")),
            gpu_amount=_int(p.get("gpu_amount")),
            gpu_model=as_str(p.get("gpu_model")),
        )
        for p in dicts(data)
        if as_str(p.get("name"))
    ]


def parse_zones(stdout: str) -> list[str]:
    """`zone list -o json` → zone ids. The key is singular: ``{"zone": [...]}``."""
    data = _load(stdout, "zone list")
    if isinstance(data, dict):
        data = data.get("zone", data.get("zones"))
    if not isinstance(data, list):
        raise _shape_error("zone list", data)
    return [as_str(z.get("id")) for z in dicts(data) if as_str(z.get("id"))]


def parse_zone_devices(stdout: str) -> dict[str, dict[str, int]]:
    """`zone devices -o json` → {zone: {gpu plan: amount available}} (zones without devices map to {})."""
    data = _load(stdout, "zone devices")
    if not isinstance(data, dict):
        raise _shape_error("zone devices", data)
    result: dict[str, dict[str, int]] = {}
    for zone, entry in data.items():
        gpu_plans = entry.get("gpu_plans") if isinstance(entry, dict) else None
        plans = gpu_plans if isinstance(gpu_plans, dict) else {}
        result[zone] = {name: _int(info.get("amount")) if isinstance(info, dict) else 0 for name, info in plans.items()}
    return result


def parse_templates(stdout: str) -> list[TemplateInfo]:
    """`storage list --public --template -o json` → templates (``{"storages": [...]}``)."""
    data = _listing(stdout, "storage list", "storages")
    return [
        TemplateInfo(
            uuid=as_str(s.get("uuid")), title=as_str(s.get("title")), template_type=as_str(s.get("template_type"))
        )
        for s in dicts(data)
        if as_str(s.get("uuid")) and s.get("type", "template") == "template"
    ]


def _address(ip: dict[str, Any], family: str) -> str | None:
    if ip.get("family") == family and as_str(ip.get("address")):
        return as_str(ip.get("address"))
    return None


def _interfaces(server: dict[str, Any]) -> list[dict[str, Any]]:
    networking = server.get("networking")
    interfaces = networking.get("interfaces") if isinstance(networking, dict) else None
    if isinstance(interfaces, dict):  # the API's wrapped form {"interface": [...]}
        interfaces = interfaces.get("interface")
    return dicts(interfaces)


def public_ipv4(server: dict[str, Any]) -> str | None:
    """The public IPv4: public interfaces first, then the top-level ``ip_addresses`` (create responses)."""
    candidates: list[tuple[bool, str]] = []
    for iface in _interfaces(server):
        if iface.get("type") != "public":
            continue
        ips = iface.get("ip_addresses")
        if isinstance(ips, dict):
            ips = ips.get("ip_address")
        for ip in dicts(ips):
            if addr := _address(ip, "IPv4"):
                candidates.append((ip.get("floating") == "yes", addr))
    if not candidates:
        for ip in dicts(server.get("ip_addresses")):
            if ip.get("access") == "public" and (addr := _address(ip, "IPv4")):
                candidates.append((ip.get("floating") == "yes", addr))
    if not candidates:
        return None
    return sorted(candidates, key=lambda c: c[0])[0][1]  # prefer the server's own address over a floating one


def private_ipv4(server: dict[str, Any]) -> str | None:
    """The IPv4 on the first private interface; else a top-level ``ip_addresses`` entry with access "private".

    The create response lists a private interface's address only under ``networking.interfaces``.
    """
    for iface in sorted(_interfaces(server), key=lambda i: _int(i.get("index"))):
        if iface.get("type") != "private":
            continue
        ips = iface.get("ip_addresses")
        if isinstance(ips, dict):
            ips = ips.get("ip_address")
        for ip in dicts(ips):
            if addr := _address(ip, "IPv4"):
                return addr
    ips = server.get("ip_addresses")
    if isinstance(ips, dict):
        ips = ips.get("ip_address")
    for ip in dicts(ips):
        if ip.get("access") == "private" and (addr := _address(ip, "IPv4")):
            return addr
    return None


def _storage_uuids(server: dict[str, Any]) -> tuple[str, ...]:
    devices = server.get("storage_devices")
    if isinstance(devices, dict):
        devices = devices.get("storage_device")
    return tuple(as_str(d.get("storage")) for d in dicts(devices) if as_str(d.get("storage")))


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        value = value.get("label")
    return {as_str(lb.get("key")): as_str(lb.get("value")) for lb in dicts(value) if as_str(lb.get("key"))}


def _server(obj: dict[str, Any], detailed: bool) -> ServerInfo:
    return ServerInfo(
        uuid=as_str(obj.get("uuid")),
        hostname=as_str(obj.get("hostname")),
        title=as_str(obj.get("title")),
        state=as_str(obj.get("state")),
        plan=as_str(obj.get("plan")),
        zone=as_str(obj.get("zone")),
        public_ipv4=public_ipv4(obj),
        labels=_labels(obj.get("labels")) if detailed else {},
        gpu_models=tuple(as_str(d.get("model")) for d in dicts(obj.get("devices")) if d.get("type") == "gpu"),
        private_ipv4=private_ipv4(obj),
        storages=_storage_uuids(obj) if detailed else (),
    )


def parse_server(stdout: str) -> ServerInfo:
    """`server show|create|stop|start -o json` → the server (one object, or the first of an array)."""
    data = _load(stdout, "server details")
    if isinstance(data, list):
        data = data[0] if data else None
    if not isinstance(data, dict):
        raise _shape_error("server details", data)
    if "error" in data and "uuid" not in data:
        raise ProviderError(f"upctl reported an error: {as_str(data.get('error'))}", "re-run with --debug for details")
    if not as_str(data.get("uuid")):
        raise _shape_error("server details", data)
    return _server(data, detailed=True)


def parse_server_list(stdout: str) -> list[ServerInfo]:
    """`server list -o json` → summaries (``{"servers": [...]}``): no labels or devices."""
    data = _listing(stdout, "server list", "servers")
    return [_server(s, detailed=False) for s in dicts(data) if as_str(s.get("uuid"))]


def parse_storage_uuids(stdout: str) -> list[str]:
    """`storage list -o json` → the UUIDs of the account's storages (``{"storages": [...]}``)."""
    data = _listing(stdout, "storage list", "storages")
    return [as_str(s.get("uuid")) for s in dicts(data) if as_str(s.get("uuid"))]


def _network(obj: dict[str, Any]) -> NetworkInfo:
    ip_networks = obj.get("ip_networks")
    if isinstance(ip_networks, dict):  # {"ip_network": [...]}, in the API and in upctl's output alike
        ip_networks = ip_networks.get("ip_network")
    ipv4 = [n for n in dicts(ip_networks) if n.get("family", "IPv4") == "IPv4" and as_str(n.get("address"))]
    first = ipv4[0] if ipv4 else {}
    servers = obj.get("servers")
    if isinstance(servers, dict):  # the API's {"server": [...]}; upctl prints the bare list
        servers = servers.get("server")
    return NetworkInfo(
        uuid=as_str(obj.get("uuid")),
        name=as_str(obj.get("name")),
        zone=as_str(obj.get("zone")),
        network_type=as_str(obj.get("type")),
        cidr=as_str(first.get("address")),
        dhcp=first.get("dhcp") in ("yes", True, "true"),
        servers=tuple(as_str(s.get("uuid")) for s in dicts(servers) if as_str(s.get("uuid"))),
    )


def parse_network(stdout: str) -> NetworkInfo:
    """`network create|show -o json` → the network (one object, or the first of an array)."""
    data = _load(stdout, "network details")
    if isinstance(data, list):
        data = data[0] if data else None
    if isinstance(data, dict) and isinstance(data.get("network"), dict):  # the API's wrapper, should upctl keep it
        data = data["network"]
    if not isinstance(data, dict) or not as_str(data.get("uuid")):
        raise _shape_error("network details", data)
    return _network(data)


def parse_network_list(stdout: str) -> list[NetworkInfo]:
    """`network list -o json` → ``{"networks": [...] or null}`` (null when none matches the filter)."""
    data = _load(stdout, "network list")
    if isinstance(data, dict):
        data = data.get("networks")
    if isinstance(data, dict):  # the API's {"network": [...]}
        data = data.get("network")
    if data is None:
        return []
    if not isinstance(data, list):
        raise _shape_error("network list", data)
    return [_network(n) for n in dicts(data) if as_str(n.get("uuid"))]


def parse_firewall_rules(stdout: str) -> list[dict[str, str]]:
    """`server firewall show -o json`: {"firewall_rules": [rule, ...] or null}, fields as strings."""
    data = _load(stdout, "firewall rules")
    rules = data.get("firewall_rules") if isinstance(data, dict) else None
    if rules is not None and not isinstance(rules, list):
        raise _shape_error("firewall rules", data)
    return [{k: as_str(v) for k, v in r.items()} for r in dicts(rules or [])]
