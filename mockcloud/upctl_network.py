"""`upctl network create|list|show|delete` and the private addresses servers get on those networks.

Shapes as upctl prints upcloud-go-api's Network struct (see tests/upctl_go.py): ``ip_networks`` wrapped as
``{"ip_network": [...]}``, booleans "yes"/"no", ``servers`` a bare list (null when none).

The NETWORK_* errors below are NOT from a recording. Searched for one: upcloud-go-api f64673e (every
upcloud/service/fixtures/*.yaml cassette: no NETWORK_* error body; its only network errors are the constants in
upcloud/error_codes.go, which do list NETWORK_NOT_FOUND, NETWORK_NOT_EMPTY and NETWORK_INVALID), upcloud-cli
c90c9ea (its tests mock the service: no API error body), and the code index. So the codes are UpCloud's, but
the titles and HTTP statuses (404, 409, 400) are our guess; upctl_create.py's NETWORK_MISSING is not even in
go-api's list. Replace them with a recorded body when one turns up (tests/fixtures/recorded/).
"""

from __future__ import annotations

import ipaddress

from mockcloud.upctl_exec import ApiError, CommandError, Ctx, Result
from mockcloud.upctl_output import details, table
from mockcloud.upctl_world import new_uuid

TYPE_CHECKING = False  # typing is not imported at run time: the fake upctl starts once per call
if TYPE_CHECKING:
    from typing import Any

_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


def _bool(value: str, what: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise CommandError(f"could not parse {what} value: invalid boolean value {value!r}")


def _ip_network(item: str) -> dict[str, Any]:
    fields = dict(part.partition("=")[::2] for part in item.split(",") if part)
    address = fields.get("address", "")
    if not address:
        raise CommandError("address is required for ip-network")
    try:
        net = ipaddress.ip_network(address, strict=False)
    except ValueError as exc:
        raise CommandError(f"{address} is not a valid IP address or network: {exc}") from None
    family = "IPv4" if net.version == 4 else "IPv6"
    if fields.get("family") and fields["family"] != family:
        raise CommandError(f"family {fields['family']} is invalid for address {address}")
    return {
        "address": address,
        "dhcp": _bool(fields["dhcp"], "dhcp") if "dhcp" in fields else False,
        "dhcp_default_route": _bool(fields["dhcp-default-route"], "dhcp-default-route")
        if "dhcp-default-route" in fields
        else False,
        "family": family,
        # upctl's help: "Defaults to first address of the network if not given".
        "gateway": fields.get("gateway") or (str(next(net.hosts())) if net.version == 4 else ""),
    }


def attached(state: dict[str, Any], uuid: str) -> list[dict[str, Any]]:
    return [s for s in state["servers"] if any(i.get("network") == uuid for i in s["interfaces"])]


def network_json(state: dict[str, Any], net: dict[str, Any]) -> dict[str, Any]:
    servers = [{"uuid": s["uuid"], "title": s["title"]} for s in attached(state, net["uuid"])]
    ip_networks = []
    for ipn in net["ip_networks"]:
        item: dict[str, Any] = {"address": ipn["address"]} if ipn["address"] else {}
        item["dhcp"] = "yes" if ipn["dhcp"] else "no"
        item["dhcp_default_route"] = "yes" if ipn["dhcp_default_route"] else "no"
        item["family"] = ipn["family"]
        if ipn["gateway"]:
            item["gateway"] = ipn["gateway"]
        item["dhcp_routes_configuration"] = {"effective_routes_auto_population": {"enabled": "no"}}
        ip_networks.append(item)
    return {
        "ip_networks": {"ip_network": ip_networks},
        "name": net["name"],
        "type": "private",
        "uuid": net["uuid"],
        "zone": net["zone"],
        "router": net.get("router", ""),
        "servers": servers or None,
        "labels": None,
    }


def find(state: dict[str, Any], arg: str) -> dict[str, Any]:
    """upctl's network resolver: UUID or exact name."""
    nets = state.get("networks", [])
    found: list[dict[str, Any]] = [n for n in nets if n["uuid"] == arg] or [n for n in nets if n["name"] == arg]
    if len(found) > 1:
        raise CommandError(f"'{arg}' is not a glob pattern, but matches multiple values.")
    if not found:
        raise CommandError(f"cannot resolve argument: nothing found matching '{arg}'")
    return found[0]


def create(ctx: Ctx) -> Result:
    p = ctx.parsed
    name = p.string("name")
    ip_networks = [_ip_network(item) for item in p.strings("ip-network")]
    msg = f"Creating network {name}"
    ctx.progress.started(msg)
    try:
        ctx.api("POST", "/network/")
        with ctx.world.transaction() as state:
            net: dict[str, Any] = {"uuid": new_uuid("03"), "name": name, "zone": p.string("zone"),
                                   "router": p.string("router"), "ip_networks": ip_networks}  # fmt: skip
            state.setdefault("networks", []).append(net)
            value = network_json(state, net)
    except CommandError as exc:
        raise ctx.failed(msg, exc) from exc
    ctx.progress.success(msg)
    return Result(value, details([("UUID", net["uuid"])]))


def list_networks(ctx: Ctx) -> Result:
    p = ctx.parsed
    ctx.api("GET", "/network/")
    state = ctx.world.snapshot()
    zone = p.string("zone")
    nets = [n for n in state.get("networks", []) if not zone or n["zone"] == zone]
    # The fake holds private networks only: --public/--utility alone match none.
    if not p.enabled("all") and (p.enabled("public") or p.enabled("utility")):
        nets = []
    value = {"networks": [network_json(state, n) for n in nets] or None}
    rows = [[n["uuid"], n["name"], n.get("router", ""), "private", n["zone"]] for n in nets]
    return Result(value, table(["UUID", "Name", "Router", "Type", "Zone"], rows))


def show(ctx: Ctx, arg: str, _cached: dict[str, Any]) -> Result:
    state = ctx.world.snapshot()
    net = find(state, arg)
    ctx.api("GET", f"/network/{net['uuid']}")
    value = network_json(state, net)
    rows = [("UUID:", net["uuid"]), ("Name:", net["name"]), ("Router:", net.get("router", "")),
            ("Type:", "private"), ("Zone:", net["zone"])]  # fmt: skip
    return Result(value, details(rows, "Common"))


def delete(ctx: Ctx, arg: str, _cached: dict[str, Any]) -> Result:
    net = find(ctx.world.snapshot(), arg)
    msg = f"Deleting network {net['uuid']}"
    ctx.progress.started(msg)
    try:
        ctx.api("DELETE", f"/network/{net['uuid']}")
        with ctx.world.transaction() as state:
            current = next((n for n in state.get("networks", []) if n["uuid"] == net["uuid"]), None)
            if current is None:
                raise ApiError(f"The network {net['uuid']} does not exist.", "NETWORK_NOT_FOUND", 404)
            if attached(state, net["uuid"]):
                raise ApiError(
                    f"The network {net['uuid']} cannot be deleted because it has servers attached.",
                    "NETWORK_NOT_EMPTY",
                    409,
                )
            state["networks"].remove(current)
    except CommandError as exc:
        raise ctx.failed(msg, exc) from exc
    ctx.progress.success(msg)
    return Result(none=True)


def private_address(state: dict[str, Any], network: str, zone: str, taken: set[str]) -> str:
    """The next free host address of a private network (the first is left for the gateway)."""
    net = next((n for n in state.get("networks", []) if n["uuid"] == network), None)
    if net is None:
        raise ApiError(f"The network {network} does not exist.", "NETWORK_NOT_FOUND", 404)
    if net["zone"] != zone:
        raise ApiError(f"The network {network} is not in zone {zone}.", "NETWORK_INVALID", 400)
    cidr = ipaddress.ip_network(net["ip_networks"][0]["address"], strict=False)
    for host in list(cidr.hosts())[1:]:
        if str(host) not in taken:
            return str(host)
    raise ApiError(f"The network {network} has no free addresses.", "NETWORK_INVALID", 400)
