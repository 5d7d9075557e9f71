"""Turns the fake world's records into the JSON objects upctl prints (Go field order, upctl's types)."""

from __future__ import annotations

from mockcloud.upctl_seed import L40S_METADATA

TYPE_CHECKING = False  # typing is not imported at run time: the fake upctl starts once per call
if TYPE_CHECKING:
    from typing import Any

FIREWALL_FIELDS = (
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
_ACCESS_ORDER = {"public": 0, "private": 1, "utility": 2}


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def ip_object(access: str, address: str, family: str, **extra: str) -> dict[str, str]:
    """upcloud.IPAddress: every field present, booleans as "yes"/"no"."""
    return {
        "access": access,
        "address": address,
        "dhcp_provided": extra.get("dhcp_provided", "no"),
        "family": family,
        "part_of_plan": extra.get("part_of_plan", "no"),
        "ptr_record": extra.get("ptr_record", ""),
        "release_policy": extra.get("release_policy", ""),
        "server": extra.get("server", ""),
        "mac": extra.get("mac", ""),
        "floating": extra.get("floating", "no"),
        "zone": extra.get("zone", ""),
    }


def ptr_record(address: str, family: str, zone: str) -> str:
    return f"{address.replace('.', '-')}.{zone}.upcloud.host" if family == "IPv4" else ""


def _addresses(server: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, str]]]:
    return [(iface, addr) for iface in server["interfaces"] for addr in iface["addresses"]]


def server_summary(server: dict[str, Any], state: str | None = None) -> dict[str, Any]:
    """upcloud.Server (what `server list` prints per server)."""
    return {
        "core_number": str(server["core_number"]),
        "hostname": server["hostname"],
        "license": 0,
        "memory_amount": str(server["memory_amount"]),
        "plan": server["plan"],
        "progress": "0",
        "state": state or server["state"],
        "tags": list(server.get("tags", [])),
        "title": server["title"],
        "uuid": server["uuid"],
        "zone": server["zone"],
    }


def server_ip_list(server: dict[str, Any], access: str = "all") -> list[dict[str, str]]:
    """`server list --show-ip-addresses[=access]`: access filled in, public > private > utility."""
    items = [
        ip_object(
            iface["type"],
            addr["address"],
            addr["family"],
            part_of_plan=yes_no(iface["type"] == "public"),
            ptr_record=ptr_record(addr["address"], addr["family"], server["zone"]) if iface["type"] == "public" else "",
            server=server["uuid"],
            mac=iface["mac"],
            zone=server["zone"],
        )
        for iface, addr in _addresses(server)
        if access == "all" or iface["type"] == access
    ]
    return sorted(items, key=lambda ip: _ACCESS_ORDER.get(ip["access"], 3))


def ip_address_list(servers: list[dict[str, Any]]) -> list[dict[str, str]]:
    """`ip-address list`: every address of every server, with owner, MAC, PTR record and zone."""
    return [
        ip_object(
            iface["type"],
            addr["address"],
            addr["family"],
            part_of_plan=yes_no(iface["type"] == "public" and addr["family"] == "IPv4"),
            ptr_record=ptr_record(addr["address"], addr["family"], server["zone"]) if iface["type"] == "public" else "",
            server=server["uuid"],
            mac=iface["mac"],
            zone=server["zone"],
        )
        for server in servers
        for iface, addr in _addresses(server)
    ]


def storage_object(storage: dict[str, Any]) -> dict[str, Any]:
    """upcloud.Storage (`storage list`): labels only when non-empty."""
    out: dict[str, Any] = {
        key: storage[key]
        for key in (
            "access",
            "encrypted",
            "license",
            "part_of_plan",
            "size",
            "state",
            "template_type",
            "tier",
            "title",
            "type",
            "uuid",
            "zone",
            "origin",
            "created",
        )
    }
    if storage.get("labels"):
        out["labels"] = list(storage["labels"])
    return out


def _storage_device(device: dict[str, Any], storages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    storage = storages.get(device["uuid"], {})
    return {
        "address": device["address"],
        "storage_encrypted": storage.get("encrypted", "no"),
        "labels": None,
        "part_of_plan": storage.get("part_of_plan", ""),
        "storage": device["uuid"],
        "storage_size": storage.get("size", 0),
        "storage_tier": storage.get("tier", ""),
        "storage_title": storage.get("title", ""),
        "type": "disk",
        "boot_disk": device.get("boot_disk", "0"),
    }


def server_details(
    server: dict[str, Any],
    storages: dict[str, dict[str, Any]],
    *,
    state: str | None = None,
    password: str = "",
) -> dict[str, Any]:
    """upcloud.ServerDetails (`server show/create/stop/start/modify`)."""
    # As in every recorded answer (tests/fixtures/recorded/upcloud-go-api/server_*.json): utility, public IPv6,
    # public IPv4; a private interface's address only under `networking` (server_details_private.json).
    top_level = sorted(
        ((iface, addr) for iface, addr in _addresses(server) if iface["type"] != "private"),
        key=lambda pair: (pair[0]["type"] != "utility", pair[1]["family"] == "IPv4"),
    )
    devices = [
        {"model": server["gpu_model"], "type": "gpu", "serial": serial, "metadata": dict(L40S_METADATA)}
        for serial in server.get("gpu_serials", [])
    ]
    remote_on = server.get("remote_access_enabled") == "yes"
    out = server_summary(server, state)
    out.update(
        {
            "boot_order": server.get("boot_order", "disk"),
            "devices": devices or None,
            "firewall": server.get("firewall", "off"),
            "host": server["host"],
            "ip_addresses": [
                ip_object(
                    iface["type"],
                    addr["address"],
                    addr["family"],
                    part_of_plan=yes_no(iface["type"] == "public" and addr["family"] == "IPv4"),
                )
                for iface, addr in top_level
            ],
            "labels": {"label": [dict(label) for label in server.get("labels", [])]},
            "metadata": server.get("metadata", "no"),
            "password": password,
            "nic_model": server.get("nic_model", "virtio"),
            "networking": {
                "interfaces": [
                    {
                        "index": iface["index"],
                        "ip_addresses": [
                            ip_object("", a["address"], a["family"], dhcp_provided="yes") for a in iface["addresses"]
                        ],
                        "mac": iface["mac"],
                        "network": iface["network"],
                        "type": iface["type"],
                        "bootable": iface.get("bootable", "no"),
                        "source_ip_filtering": iface.get("source_ip_filtering", "yes"),
                    }
                    for iface in server["interfaces"]
                ]
            },
            "server_group": server.get("server_group", ""),
            "simple_backup": server.get("simple_backup", "no"),
            "storage_devices": [_storage_device(d, storages) for d in server.get("storage_devices", [])],
            "timezone": server.get("timezone", "UTC"),
            "video_model": server.get("video_model", "vga"),
            "remote_access_enabled": yes_no(remote_on),
            "remote_access_type": server.get("remote_access_type") or "vnc",
            "remote_access_host": f"{server['zone']}.vnc.upcloud.com" if remote_on else "",
            "remote_access_password": server.get("remote_access_password", ""),
            "remote_access_port": "3000" if remote_on else "0",
        }
    )
    return out


def firewall_rule(rule: dict[str, Any]) -> dict[str, str]:
    """upcloud.FirewallRule with `omitempty`: empty strings dropped, position as a string."""
    out: dict[str, str] = {}
    for key in FIREWALL_FIELDS:
        value = rule.get(key)
        if value in (None, "", 0):
            continue
        out[key] = str(value)
    return out
