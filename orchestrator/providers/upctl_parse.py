"""Parsers for upctl's JSON output (strings for numbers, "yes"/"no", shapes that changed between versions)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from typing import Any

from orchestrator.errors import CapacityError, ProviderError
from orchestrator.providers.base import PlanInfo, ServerInfo, TemplateInfo

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


def select_plan(plans: Sequence[PlanInfo], pattern: str) -> PlanInfo:
    """Exact plan name first, else a full-match regex that must match exactly one plan."""
    for plan in plans:
        if plan.name == pattern:
            return plan
    try:
        rx: re.Pattern[str] | None = re.compile(pattern)
    except re.error:
        rx = None
    matches = [p for p in plans if rx is not None and rx.fullmatch(p.name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(p.name for p in matches)
        raise ProviderError(
            f"plan pattern {pattern!r} matches {len(matches)} plans: {names}",
            "set the plan to one exact name from that list",
        )
    gpu_names = [p.name for p in plans if p.is_gpu]
    close = difflib.get_close_matches(pattern, gpu_names, n=5, cutoff=0.4) or sorted(gpu_names)[:8]
    raise ProviderError(
        f"no UpCloud plan is named or matches {pattern!r}",
        f"GPU plans include: {', '.join(close)}" if close else "`upctl server plans` lists no GPU plans",
    )


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


def check_zone(zones: Sequence[str], zone: str) -> None:
    """Raise when ``zone`` is not one of the zones this account sees."""
    if zone in zones:
        return
    close = difflib.get_close_matches(zone, list(zones), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known zones: {', '.join(sorted(zones))}"
    raise ProviderError(f"UpCloud has no zone {zone!r}", hint + " (GPU servers live in fi-hel2)")


def check_gpu_availability(devices: dict[str, dict[str, int]], zone: str, plan: str) -> None:
    """CapacityError when ``plan`` has no free GPUs in ``zone``; the hint names zones that have some."""
    available = devices.get(zone, {})
    amount = available.get(plan)
    if amount is not None and amount > 0:
        return
    elsewhere = sorted(z for z, plans in devices.items() if z != zone and plans.get(plan, 0) > 0)
    other_plans = sorted(p for p, n in available.items() if n > 0)
    if elsewhere:
        hint = f"{plan} is available in: {', '.join(elsewhere)}"
    elif other_plans:
        hint = f"no zone has {plan} free right now; {zone} has: {', '.join(other_plans)}"
    else:
        hint = "no zone reports free capacity for this plan; try again later or pick another GPU plan"
    reason = "has no free capacity" if amount is not None else "is not offered"
    raise CapacityError(f"GPU plan {plan} {reason} in zone {zone}", hint)


def parse_templates(stdout: str) -> list[TemplateInfo]:
    """`storage list --public --template -o json` → templates (``{"storages": [...]}``)."""
    data = _load(stdout, "storage list")
    if isinstance(data, dict):
        data = data.get("storages")
    if data is None:
        return []
    if not isinstance(data, list):
        raise _shape_error("storage list", data)
    return [
        TemplateInfo(
            uuid=as_str(s.get("uuid")), title=as_str(s.get("title")), template_type=as_str(s.get("template_type"))
        )
        for s in dicts(data)
        if as_str(s.get("uuid")) and s.get("type", "template") == "template"
    ]


def _one_template(matches: list[TemplateInfo], wanted: str, how: str) -> TemplateInfo:
    if len(matches) == 1:
        return matches[0]
    listing = "; ".join(f"{t.title} ({t.uuid})" for t in matches)
    raise ProviderError(
        f"OS template {wanted!r} {how} {len(matches)} templates: {listing}",
        "set the template to one UUID or exact title from that list",
    )


def resolve_template(templates: Sequence[TemplateInfo], wanted: str) -> TemplateInfo:
    """UUID or exact title; else a unique case-insensitive substring of the title; else a regex search."""
    for tmpl in templates:
        if tmpl.uuid == wanted:
            return tmpl
    exact = [t for t in templates if t.title == wanted]
    if exact:
        return _one_template(exact, wanted, "has the same title as")
    needle = wanted.casefold()
    matches = [t for t in templates if needle and needle in t.title.casefold()]
    if not matches:
        try:
            rx = re.compile(wanted, re.IGNORECASE)
            matches = [t for t in templates if rx.search(t.title)]
        except re.error:
            matches = []
    if matches:
        return _one_template(matches, wanted, "matches")
    titles = ", ".join(sorted(t.title for t in templates)[:10])
    raise ProviderError(
        f"no public OS template matches {wanted!r}",
        f"available templates: {titles}" if titles else "`upctl storage list --public --template` returned none",
    )


def _address(ip: dict[str, Any], family: str) -> str | None:
    if ip.get("family") == family and as_str(ip.get("address")):
        return as_str(ip.get("address"))
    return None


def public_ipv4(server: dict[str, Any]) -> str | None:
    """The public IPv4: public interfaces first, then the top-level ``ip_addresses`` (create responses)."""
    candidates: list[tuple[bool, str]] = []
    networking = server.get("networking")
    interfaces = networking.get("interfaces") if isinstance(networking, dict) else None
    if isinstance(interfaces, dict):  # the API's wrapped form {"interface": [...]}
        interfaces = interfaces.get("interface")
    for iface in dicts(interfaces):
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
    data = _load(stdout, "server list")
    if isinstance(data, dict):
        data = data.get("servers")
    if data is None:
        return []
    if not isinstance(data, list):
        raise _shape_error("server list", data)
    return [_server(s, detailed=False) for s in dicts(data) if as_str(s.get("uuid"))]


def parse_firewall_rules(stdout: str) -> list[dict[str, str]]:
    """`server firewall show -o json`: {"firewall_rules": [rule, ...] or null}, fields as strings."""
    data = _load(stdout, "firewall rules")
    rules = data.get("firewall_rules") if isinstance(data, dict) else None
    if rules is not None and not isinstance(rules, list):
        raise _shape_error("firewall rules", data)
    return [{k: as_str(v) for k, v in r.items()} for r in dicts(rules or [])]
