"""`upctl server create` for the fake: client-side validation, API-side checks, the new server record."""

from __future__ import annotations

import base64
import ipaddress
import re
import struct
from datetime import datetime, timezone
from pathlib import Path

from mockcloud import upctl_firewall, upctl_network, upctl_private
from mockcloud import upctl_seed as seed
from mockcloud.upctl_exec import CAPACITY_TITLE, ApiError, CommandError, Ctx, Result, simulated_wait
from mockcloud.upctl_output import details, go_quote
from mockcloud.upctl_render import server_details
from mockcloud.upctl_world import (
    bind_host,
    new_host_id,
    new_ipv6,
    new_mac,
    new_password,
    new_public_ipv4,
    new_serial,
    new_utility_ipv4,
    new_uuid,
    power_on,
    write_authorized_keys,
)

TYPE_CHECKING = False  # typing is not imported at run time: the fake upctl starts once per call
if TYPE_CHECKING:
    from typing import Any

_KEY_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-dss",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
_HOSTNAME = re.compile(
    r"^(?=.{1,128}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_LABEL_KEY = re.compile(r"^[A-Za-z0-9-][A-Za-z0-9_-]{1,31}$")
_NETWORK_TYPES = ("public", "private", "utility")


def _is_authorized_key(line: str) -> bool:
    """A cut-down ssh.ParseAuthorizedKey: `[options] type base64 [comment]` whose blob names `type`."""
    fields = line.strip().split()
    while fields and fields[0] not in _KEY_TYPES:
        fields = fields[1:]  # options such as `no-pty` or `from="..."` come before the key type
    if len(fields) < 2:
        return False
    try:
        blob = base64.b64decode(fields[1], validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        return blob[4 : 4 + length].decode("ascii") == fields[0]
    except (ValueError, struct.error, UnicodeDecodeError):
        return False


def parse_ssh_keys(items: list[str]) -> list[str]:
    """commands.ParseSSHKeys: literal `ssh-...` keys, or files in which every line must be a key."""
    keys: list[str] = []
    for item in items:
        if item.startswith("ssh-"):
            if not _is_authorized_key(item):
                raise CommandError(f"invalid ssh key {go_quote(item)}: ssh: no key found")
            keys.append(item)
            continue
        try:
            text = Path(item).read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise CommandError(f"open {item}: no such file or directory") from exc
        except OSError as exc:
            raise CommandError(f"open {item}: {exc.strerror or exc}") from exc
        for line in text.splitlines():
            if not _is_authorized_key(line):
                raise CommandError(f"invalid ssh key {go_quote(line)} in file {item}: ssh: no key found")
            keys.append(line)
    return keys


def _labels(items: list[str]) -> list[dict[str, str]]:
    labels = []
    for item in items:
        key, _, value = item.partition("=")
        labels.append({"key": key, "value": value})
    return labels


def _address_family(address: str) -> str:
    """upctl's family of an `ip-address=` value (an address, or an address in CIDR form)."""
    try:
        version = ipaddress.ip_interface(address).version
    except ValueError:
        raise CommandError(f"{address} is an invalid ip address") from None
    return "IPv4" if version == 4 else "IPv6"


def _networks(items: list[str]) -> list[dict[str, str]]:
    """`--network` values as upctl reads them: family from the address when one is given, else IPv4."""
    networks = []
    for item in items:
        fields = dict(part.partition("=")[::2] for part in item.split(",") if part)
        if not fields.get("type"):
            raise CommandError("network type is required")
        family = fields.get("family", "")
        address = fields.get("ip-address", "")
        if address:
            parsed = _address_family(address)
            if family and family != parsed:
                raise CommandError(f"ip family mismatch: {family} != {parsed}")
            family = parsed
        networks.append(
            {"type": fields["type"], "family": family or "IPv4", "ip": address, "network": fields.get("network", "")}
        )
    return networks


def _find_template(state: dict[str, Any], query: str) -> dict[str, Any]:
    candidates = [*seed.PUBLIC_TEMPLATES, *state["storages"]]
    matched: list[dict[str, Any]] = [s for s in candidates if query in (s["title"], s["uuid"])]
    if not matched:
        raise CommandError(f"no storage with uuid, name or title {go_quote(query)} was found")
    if len(matched) > 1:
        raise CommandError(f"multiple storages matched to query {go_quote(query)}, use UUID to specify")
    return matched[0]


def _api_checks(
    ctx: Ctx,
    plan: dict[str, Any] | None,
    labels: list[dict[str, str]],
    template: dict[str, Any] | None,
    size: int,
) -> None:
    """What the API refuses at `POST /server` (400/409 answers)."""
    p = ctx.parsed
    zone, plan_name, hostname = p.string("zone"), p.string("plan"), p.string("hostname")
    if zone not in seed.ZONE_IDS:
        raise ApiError(f"The zone {zone} is invalid.", "ZONE_INVALID", 400)
    if plan is None and plan_name != "custom":
        raise ApiError(f"The plan {plan_name} does not exist.", "PLAN_INVALID", 400)
    if not _HOSTNAME.match(hostname):
        raise ApiError("The hostname is invalid.", "HOSTNAME_INVALID", 400)
    for label in labels:
        if not _LABEL_KEY.match(label["key"]):
            raise ApiError(f"The label key {label['key']!r} is invalid.", "INVALID_LABEL_KEY", 400)
        if len(label["value"]) > 255:
            raise ApiError("The label value is too long.", "INVALID_LABEL_VALUE", 400)
    if template is not None:
        low = max(seed.MIN_STORAGE_GIB, int(template["size"]))
        if not low <= size <= seed.MAX_STORAGE_GIB:
            raise ApiError(
                f"The storage size {size} is invalid; it must be between {low} and {seed.MAX_STORAGE_GIB} GiB.",
                "STORAGE_SIZE_INVALID",
                400,
            )
    if plan is not None and plan["gpu_amount"] > 0:
        stock: dict[str, Any] = ctx.faults.get("devices") or seed.default_device_availability()
        zone_stock: dict[str, Any] = stock.get(zone) or {}
        if int(zone_stock.get(plan_name, 0)) < 1:
            raise ApiError(f"{CAPACITY_TITLE}: no {plan_name} available in {zone}", "SERVER_RESOURCES_UNAVAILABLE", 409)


def _interfaces(
    state: dict[str, Any], networks: list[dict[str, str]], public_ipv4: str, zone: str = ""
) -> list[dict[str, Any]]:
    taken = {a["address"] for s in state["servers"] for i in s["interfaces"] for a in i["addresses"]}
    if not networks:
        networks = [
            {"type": "public", "family": "IPv4", "ip": ""},
            {"type": "utility", "family": "IPv4", "ip": ""},
            {"type": "public", "family": "IPv6", "ip": ""},
        ]
    interfaces = []
    for index, net in enumerate(networks, start=1):
        if net["type"] == "private":
            if not net.get("network"):
                # Not recorded, and not a code in upcloud-go-api's error_codes.go (see upctl_network.py).
                raise ApiError("A private interface needs a network.", "NETWORK_MISSING", 400)
            address = net["ip"] or upctl_network.private_address(state, net["network"], zone, taken)
        elif net["ip"]:
            address = net["ip"]
        elif net["type"] == "public" and net["family"] == "IPv4" and public_ipv4 not in taken:
            address = public_ipv4
        elif net["family"] == "IPv6":
            address = new_ipv6()
        elif net["type"] == "public":
            address = new_public_ipv4(taken)
        else:
            address = new_utility_ipv4(taken)
        taken.add(address)
        network = net.get("network") or f"03000000-0000-4000-8{index:03d}-{net['type'][:2].encode().hex():0>12}"
        interfaces.append(
            {
                "index": index,
                "type": net["type"],
                "mac": new_mac(),
                "network": network,
                "addresses": [{"address": address, "family": net["family"]}],
                "bootable": "no",
                "source_ip_filtering": "yes",
            }
        )
    return interfaces


def create(ctx: Ctx) -> Result:
    p = ctx.parsed
    hostname, os_query = p.string("hostname"), p.string("os")
    delivery = p.string("password-delivery") or "none"
    if os_query == seed.DEFAULT_OS and delivery == "none" and "ssh-keys" not in p.changed:
        raise CommandError("a password-delivery method, ssh-keys or a custom image must be specified")
    create_password = p.enabled("create-password") or delivery != "none"
    plan_name = p.string("plan")
    if p.integer("cores") or p.integer("memory") or plan_name == "custom":
        if not p.integer("cores") or not p.integer("memory"):
            raise CommandError("both --cores and --memory must be defined for custom plans")
        if plan_name != "custom":
            raise CommandError("--plan needs to be 'custom' when --cores and --memory are specified")
    msg = f"Creating server {hostname}"
    ctx.progress.started(msg)
    snapshot = ctx.world.snapshot()
    template = _find_template(snapshot, os_query) if os_query else None
    plan = seed.find_plan(plan_name)
    size = p.integer("os-storage-size") or (int(plan["storage_size"]) if plan else seed.MIN_STORAGE_GIB)
    labels = _labels(p.strings("label"))
    networks = _networks(p.strings("network"))
    keys = parse_ssh_keys(p.strings("ssh-keys"))
    try:
        ctx.api("POST", "/server")
        _api_checks(ctx, plan, labels, template, size)
        record, storages = _store(ctx, plan, template, size, labels, networks, keys)
        ctx.answer_lost("POST", "/server")  # the server exists in the cloud; the client never hears of it
    except CommandError as exc:
        raise ctx.failed(msg, exc) from exc
    password = new_password() if create_password else ""
    response = server_details(record, storages, state="maintenance", password=password)
    if p.enabled("wait"):
        ctx.progress.update(msg, f"Waiting for server {record['uuid']} to be in started state")
        simulated_wait(ctx)
        if record["state"] != "started":
            ctx.progress.warning(msg, "context deadline exceeded")
        else:
            ctx.progress.success(msg)
    else:
        ctx.progress.success(msg)
    addresses = ",\n".join(a["address"] for i in record["interfaces"] for a in i["addresses"])
    return Result(response, details([("UUID", record["uuid"]), ("IP Addresses", addresses)]))


def _store(
    ctx: Ctx,
    plan: dict[str, Any] | None,
    template: dict[str, Any] | None,
    size: int,
    labels: list[dict[str, str]],
    networks: list[dict[str, str]],
    keys: list[str],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Create the server (and its OS disk) inside one world transaction; binds a pool host if there is one."""
    p = ctx.parsed
    stuck = ctx.faults.get("stuck_state") if ctx.faults.get("stuck_state") in ("maintenance", "error") else None
    settle_now = p.enabled("wait") and not ctx.faults.get("wait_timeout") and not stuck
    pool = ctx.world.hosts()
    with ctx.world.transaction() as state:
        host = None
        if pool is not None:
            host = bind_host(pool, state["servers"])
            if host is None:
                raise ApiError(CAPACITY_TITLE, "SERVER_RESOURCES_UNAVAILABLE", 409)
        taken = {a["address"] for s in state["servers"] for i in s["interfaces"] for a in i["addresses"]}
        public_ipv4 = host.ipv4 if host else new_public_ipv4(taken)
        uuid, now = new_uuid("00"), datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        hostname = p.string("hostname")
        devices = []
        if template is not None:
            disk = {
                "access": "private",
                "encrypted": "yes" if p.enabled("os-storage-encrypt") else "no",
                "license": 0,
                "part_of_plan": "yes" if plan and size <= int(plan["storage_size"]) else "",
                "size": size,
                "state": "online",
                "template_type": "",
                "tier": (plan or {}).get("storage_tier") or "maxiops",
                "title": f"{hostname[:57]}-OS",
                "type": "normal",
                "uuid": new_uuid("01"),
                "zone": p.string("zone"),
                "origin": template["uuid"],
                "created": now,
                "labels": [],
                "server": uuid,
            }
            state["storages"].append(disk)
            devices.append({"uuid": disk["uuid"], "address": "virtio:0", "boot_disk": "0"})
        record: dict[str, Any] = {
            "uuid": uuid,
            "hostname": hostname,
            "title": p.string("title") or hostname,
            "zone": p.string("zone"),
            "plan": p.string("plan"),
            "core_number": plan["core_number"] if plan else p.integer("cores"),
            "memory_amount": plan["memory_amount"] if plan else p.integer("memory"),
            "gpu_model": plan["gpu_model"] if plan else "",
            "gpu_serials": [new_serial() for _ in range(plan["gpu_amount"] if plan else 0)],
            "state": "started" if settle_now else (stuck or "maintenance"),
            "pending": None
            if settle_now or stuck
            else {"to": "started", "polls": int(ctx.faults.get("boot_polls", 1))},
            "stuck": stuck,
            "labels": labels,
            "tags": [],
            "firewall": "on" if p.enabled("enable-firewall") else "off",
            "metadata": "yes"
            if p.enabled("enable-metadata") or (template is not None and template["template_type"] == "cloud-init")
            else "no",
            "host": new_host_id(),
            "storage_devices": devices,
            "interfaces": _interfaces(state, networks, public_ipv4, p.string("zone")),
            "firewall_rules": [],
            "simple_backup": p.string("simple-backup") or "no",
            "timezone": p.string("time-zone") or "UTC",
            "video_model": p.string("video-model") or "vga",
            "nic_model": "virtio",
            "boot_order": p.string("boot-order") or "disk",
            "remote_access_enabled": "yes" if p.enabled("enable-remote-access") else "no",
            "remote_access_type": p.string("remote-access-type") or "vnc",
            "remote_access_password": p.string("remote-access-password"),
            "server_group": p.string("server-group"),
            "pool_ipv4": host.ipv4 if host else None,
            "login_user": p.string("username"),
            "ssh_keys": keys,
            "user_data": p.string("user-data"),
            "created": now,
        }
        state["servers"].append(record)
        if host is not None:
            write_authorized_keys(host, keys)
            power_on(host)  # a host a deleted server left powered off
        upctl_private.attach(host, state, record)  # DHCP on the private interface
        storages = {s["uuid"]: s for s in state["storages"]}
    upctl_firewall.apply(host, record)  # a new server: no rules (nothing filtered) unless they follow
    return record, storages
