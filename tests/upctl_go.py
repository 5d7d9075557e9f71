"""What `upctl ... -o json` prints for a recorded UpCloud API response (test helper, no upctl binary needed).

upctl unmarshals the API answer into upcloud-go-api's Go structs and prints them with ``json.MarshalIndent``.
This module applies those struct definitions (field order, ``,string`` ints, ``omitempty``, the ``Boolean``
type, the wrapper lists the API uses and upctl drops) to a recorded API body. The facts are listed, per type,
in tests/fixtures/recorded/README.md; nothing here is copied from upctl or go-api.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Json = Any
Field = tuple[str, Callable[[Json], Json]]


def _str(v: Json) -> str:
    return v if isinstance(v, str) else ""


def _int(v: Json) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


def _intstr(v: Json) -> str:
    """`int` with the `,string` tag: read from a JSON string, printed as one ("0" when absent)."""
    return str(int(v)) if isinstance(v, str) and v.strip().lstrip("-").isdigit() else "0"


def _float(v: Json) -> float | int:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


def _boolean(v: Json) -> str:
    """go-api's Boolean: true/"true"/"yes"/1/"1" → "yes"; anything else, or absent (Empty), → "no"."""
    return "yes" if v in (True, "true", "yes", "1") or (type(v) is int and v == 1) else "no"


def _wrapped(key: str, item: Callable[[Json], Json], *, nil_when_empty: bool = False) -> Callable[[Json], Json]:
    """A Go slice whose UnmarshalJSON reads ``{"<key>": [...]}``; printed as a bare list (nil → null)."""

    def conv(v: Json) -> Json:
        if not isinstance(v, dict) or key not in v or v[key] is None:
            return None
        items = [item(x) for x in v[key]]
        return None if nil_when_empty and not items else items

    return conv


def _plain_list(item: Callable[[Json], Json]) -> Callable[[Json], Json]:
    return lambda v: [item(x) for x in v] if isinstance(v, list) else None


def _struct(fields: list[Field], omitempty: frozenset[str] = frozenset()) -> Callable[[Json], dict[str, Json]]:
    def conv(v: Json) -> dict[str, Json]:
        src = v if isinstance(v, dict) else {}
        out: dict[str, Json] = {}
        for name, fn in fields:
            value = fn(src.get(name))
            if name in omitempty and value in ("", 0, None, "0"):
                continue
            out[name] = value
        return out

    return conv


LABEL = _struct([("key", _str), ("value", _str)])
IP_ADDRESS = _struct(
    [
        ("access", _str),
        ("address", _str),
        ("dhcp_provided", _boolean),
        ("family", _str),
        ("part_of_plan", _boolean),
        ("ptr_record", _str),
        ("release_policy", _str),
        ("server", _str),
        ("mac", _str),
        ("floating", _boolean),
        ("zone", _str),
    ]
)
# IPAddressSlice appends element by element: an empty wrapper stays a nil slice (null).
IP_ADDRESSES = _wrapped("ip_address", IP_ADDRESS, nil_when_empty=True)
INTERFACE = _struct(
    [
        ("index", _int),
        ("ip_addresses", IP_ADDRESSES),
        ("mac", _str),
        ("network", _str),
        ("type", _str),
        ("bootable", _boolean),
        ("source_ip_filtering", _boolean),
    ]
)
DEVICE = _struct(
    [
        ("model", _str),
        ("type", _str),
        ("serial", _str),
        ("metadata", _struct([("cores", _int), ("memory", _int)])),
    ]
)
STORAGE_DEVICE = _struct(
    [
        ("address", _str),
        ("storage_encrypted", _boolean),
        ("labels", _plain_list(LABEL)),
        ("part_of_plan", _str),
        ("storage", _str),
        ("storage_size", _int),
        ("storage_tier", _str),
        ("storage_title", _str),
        ("type", _str),
        ("boot_disk", _intstr),
    ]
)
SERVER_FIELDS: list[Field] = [
    ("core_number", _intstr),
    ("hostname", _str),
    ("license", _float),
    ("memory_amount", _intstr),
    ("plan", _str),
    ("progress", _intstr),
    ("state", _str),
    ("tags", _wrapped("tag", _str)),
    ("title", _str),
    ("uuid", _str),
    ("zone", _str),
]
SERVER = _struct(SERVER_FIELDS)


def _labels(v: Json) -> dict[str, Json]:
    """LabelSlice marshals back into its wrapper, and a nil slice as an empty list."""
    items = v.get("label") if isinstance(v, dict) else None
    return {"label": [LABEL(x) for x in items or []]}


SERVER_DETAILS = _struct(
    [
        *SERVER_FIELDS,
        ("boot_order", _str),
        ("devices", _wrapped("device", DEVICE)),
        ("firewall", _str),
        ("host", _int),
        ("ip_addresses", IP_ADDRESSES),
        ("labels", _labels),
        ("metadata", _boolean),
        ("password", _str),
        ("nic_model", _str),
        ("networking", lambda v: {"interfaces": _wrapped("interface", INTERFACE)((v or {}).get("interfaces"))}),
        ("server_group", _str),
        ("simple_backup", _str),
        ("storage_devices", _wrapped("storage_device", STORAGE_DEVICE)),
        ("timezone", _str),
        ("video_model", _str),
        ("remote_access_enabled", _boolean),
        ("remote_access_type", _str),
        ("remote_access_host", _str),
        ("remote_access_password", _str),
        ("remote_access_port", _intstr),
    ]
)
PLAN = _struct(
    [
        ("core_number", _int),
        ("memory_amount", _int),
        ("name", _str),
        ("public_traffic_out", _int),
        ("storage_size", _int),
        ("storage_tier", _str),
        ("gpu_amount", _int),
        ("gpu_model", _str),
    ]
)
ZONE = _struct(
    [("id", _str), ("description", _str), ("public", _boolean), ("parent_zone", _str)], frozenset({"parent_zone"})
)
STORAGE = _struct(
    [
        ("access", _str),
        ("encrypted", _boolean),
        ("license", _float),
        ("part_of_plan", _str),
        ("size", _int),
        ("state", _str),
        ("template_type", _str),
        ("tier", _str),
        ("title", _str),
        ("type", _str),
        ("uuid", _str),
        ("zone", _str),
        ("origin", _str),
        ("created", lambda v: v if isinstance(v, str) and v else "0001-01-01T00:00:00Z"),
        ("labels", _plain_list(LABEL)),
    ],
    frozenset({"labels"}),
)
_RULE_KEYS = (
    "action",
    "comment",
    "destination_address_start",
    "destination_address_end",
    "destination_port_start",
    "destination_port_end",
    "direction",
    "family",
    "icmp_type",
    "position",
    "protocol",
    "source_address_start",
    "source_address_end",
    "source_port_start",
    "source_port_end",
)
FIREWALL_RULE = _struct(
    [(k, _intstr if k == "position" else _str) for k in _RULE_KEYS],
    frozenset(k for k in _RULE_KEYS if k not in ("action", "direction")),
)


# ------------------------------------------------------------------ per command: API body → upctl stdout JSON


def server_plans(api: Json) -> Json:
    """`server plans`: the bare list, sorted by cores, memory, storage size."""
    plans = [PLAN(p) for p in api["plans"]["plan"]]
    return sorted(plans, key=lambda p: (p["core_number"], p["memory_amount"], p["storage_size"]))


def zone_list(api: Json) -> Json:
    return {"zone": [ZONE(z) for z in api["zones"]["zone"]]}


def zone_devices(api: Json) -> Json:
    """`zone devices`: map[zone]{"gpu_plans": map[plan]{"amount"}}; Go prints map keys sorted."""
    return {
        zone: {"gpu_plans": {p: {"amount": _int(a.get("amount"))} for p, a in sorted(d["gpu_plans"].items())}}
        for zone, d in sorted(api.items())
    }


def storage_list_public_templates(api: Json) -> Json:
    """`storage list --public --template`: client-side filter of GET /storage."""
    items = [STORAGE(s) for s in api["storages"]["storage"]]
    return {"storages": [s for s in items if s["access"] == "public" and s["type"] == "template"]}


def server_show(api: Json) -> Json:
    """`server show|create|stop|start` for one target: the ServerDetails object."""
    return SERVER_DETAILS(api["server"])


def server_list(api: Json) -> Json:
    return {"servers": [SERVER(s) for s in api["servers"]["server"]]}


def firewall_show(api: Json) -> Json:
    rules = api["firewall_rules"]["firewall_rule"]
    return {"firewall_rules": [FIREWALL_RULE(r) for r in rules] or None}


def firewall_create(api: Json) -> Json:
    return FIREWALL_RULE(api["firewall_rule"])


# ------------------------------------------------------------------ networks (upcloud.Network, IPNetwork)

_ROUTES_CONFIG = lambda v: {  # noqa: E731  DHCPRoutesConfiguration: a struct, so omitempty never drops it
    "effective_routes_auto_population": {
        "enabled": _boolean(((v or {}).get("effective_routes_auto_population") or {}).get("enabled"))
    }
}
IP_NETWORK = _struct(
    [
        ("address", _str),
        ("dhcp", _boolean),
        ("dhcp_default_route", _boolean),
        ("dhcp_dns", lambda v: v if isinstance(v, list) and v else None),
        ("dhcp_routes", lambda v: v if isinstance(v, list) and v else None),
        ("family", _str),
        ("gateway", _str),
        ("dhcp_routes_configuration", _ROUTES_CONFIG),
    ],
    frozenset({"address", "dhcp_dns", "dhcp_routes", "family", "gateway"}),
)
NETWORK_SERVER = _struct([("uuid", _str), ("title", _str)])


def _ip_networks(v: Json) -> Json:
    """IPNetworkSlice marshals back into its wrapper; nil as an empty list."""
    items = v.get("ip_network") if isinstance(v, dict) else None
    return {"ip_network": [IP_NETWORK(x) for x in items or []]}


NETWORK = _struct(
    [
        ("ip_networks", _ip_networks),
        ("name", _str),
        ("type", _str),
        ("uuid", _str),
        ("zone", _str),
        ("router", _str),
        ("servers", _wrapped("server", NETWORK_SERVER)),  # NetworkServerSlice has no MarshalJSON: a bare list
        ("labels", _plain_list(LABEL)),
    ]
)


def network_show(api: Json) -> Json:
    """`network create|show`: the Network object."""
    return NETWORK(api["network"])


def network_list(api: Json, *, all_types: bool = False) -> Json:
    """`network list`: private networks only unless --all; none matching prints null."""
    items = [NETWORK(n) for n in api["networks"]["network"]]
    kept = [n for n in items if all_types or n["type"] == "private"]
    return {"networks": kept or None}
