"""Read-only commands of the fake upctl: version, account, plans, zones, devices, storages, IP addresses."""

from __future__ import annotations

from mockcloud import upctl_seed as seed
from mockcloud.upctl_exec import CommandError, Result
from mockcloud.upctl_output import details, table
from mockcloud.upctl_render import ip_address_list, storage_object

TYPE_CHECKING = False  # typing is not imported at run time: the fake upctl starts once per call
if TYPE_CHECKING:
    from typing import Any

    from mockcloud.upctl_exec import Ctx


def version(_ctx: Ctx | None = None) -> Result:
    rows = [
        ("Version:", seed.VERSION["version"]),
        ("Build date:", seed.VERSION["build_date"]),
        ("Built with:", seed.VERSION["built_with"]),
        ("System:", seed.VERSION["operating_system"]),
        ("Architecture:", seed.VERSION["architecture"]),
    ]
    return Result(dict(seed.VERSION), details(rows))


def account_show(ctx: Ctx) -> Result:
    ctx.api("GET", "/account")
    data = seed.account(ctx.username)
    limits = [(f"{k.replace('_', ' ').capitalize()}:", str(v)) for k, v in data["resource_limits"].items()]
    human = details([("Username:", data["username"]), ("Credits:", f"{data['credits']:.2f} €")])
    return Result(data, human + "\n" + details(limits, "Resource Limits:"))


def plans(ctx: Ctx) -> Result:
    ctx.api("GET", "/plan")
    if ctx.parsed.string("prices-duration") != "month" and not ctx.parsed.string("prices"):
        raise CommandError("--prices-duration requires --prices zone to be specified")
    ordered = sorted(seed.PLANS, key=lambda p: (p["core_number"], p["memory_amount"], p["storage_size"]))
    rows = [
        [
            p["name"],
            str(p["core_number"]),
            str(p["memory_amount"]),
            str(p["storage_size"]),
            p["storage_tier"],
            str(p["public_traffic_out"]),
            p["gpu_model"],
            str(p["gpu_amount"]),
        ]
        for p in ordered
    ]
    human = table(
        [
            "Name",
            "Cores",
            "Memory",
            "Storage size",
            "Storage tier",
            "Transfer out (GiB/month)",
            "GPU model",
            "GPU amount",
        ],
        rows,
    )
    return Result([dict(p) for p in ordered], human)


def zone_list(ctx: Ctx) -> Result:
    ctx.api("GET", "/zone")
    rows = [[z["id"], z["description"], z["public"]] for z in seed.ZONES]
    return Result({"zone": [dict(z) for z in seed.ZONES]}, table(["ID", "Description", "Public"], rows))


def _availability(ctx: Ctx) -> dict[str, dict[str, Any]]:
    stock = ctx.faults.get("devices") or seed.default_device_availability()
    return {
        zone: {"gpu_plans": {plan: {"amount": int(amount)} for plan, amount in sorted(plans.items())}}
        for zone, plans in sorted(stock.items())
    }


def zone_devices(ctx: Ctx) -> Result:
    ctx.api("GET", "/device/availability")
    data = _availability(ctx)
    rows = [[zone, "GPU" if entry["gpu_plans"] else ""] for zone, entry in data.items()]
    return Result(data, table(["Zone", "Devices"], rows))


def zone_devices_show(ctx: Ctx, zone: str, _cached: dict[str, Any]) -> Result:
    ctx.api("GET", "/device/availability")
    gpu_plans = _availability(ctx).get(zone, {}).get("gpu_plans") or None
    rows = [[name, str(v["amount"])] for name, v in (gpu_plans or {}).items()]
    human = "  GPU plans:\n" + table(["Name", "Amount"], rows) if rows else ""
    return Result({"gpu_plans": gpu_plans}, human)


def storage_list(ctx: Ctx) -> Result:
    ctx.api("GET", "/storage")
    p = ctx.parsed
    storages = [*ctx.world.snapshot()["storages"], *seed.PUBLIC_TEMPLATES]
    private, public = p.enabled("private"), p.enabled("public")
    if public:
        private = False
    types = {
        t
        for t, flag in (
            ("normal", "normal"),
            ("backup", "backup"),
            ("cdrom", "cdrom"),
            ("template", "template"),
        )
        if p.enabled(flag)
    }
    chosen = []
    for storage in storages:
        if not p.enabled("all"):
            if private and storage["access"] == "public":
                continue
            if public and storage["access"] == "private":
                continue
            if types and storage["type"] not in types:
                continue
        chosen.append(storage_object(storage))
    rows = [
        [
            s["uuid"],
            s["title"],
            s["encrypted"],
            s["type"],
            str(s["size"]),
            s["state"],
            s["tier"],
            s["zone"],
            s["access"],
        ]
        for s in chosen
    ]
    return Result(
        {"storages": chosen},
        table(["UUID", "Title", "Encrypted", "Type", "Size", "State", "Tier", "Zone", "Access"], rows),
    )


def ip_list(ctx: Ctx) -> Result:
    ctx.api("GET", "/ip_address")
    ips = ip_address_list(ctx.world.snapshot()["servers"])
    rows = [
        [
            ip["address"],
            ip["access"],
            ip["family"],
            ip["part_of_plan"],
            ip["ptr_record"],
            ip["server"],
            ip["floating"],
            ip["zone"],
        ]
        for ip in ips
    ]
    return Result(
        {"ip_addresses": ips},
        table(["Address", "Access", "Family", "Part of Plan", "PTR Record", "Server", "Floating", "Zone"], rows),
    )
