"""Server commands of the fake upctl other than create: show, list, stop, start, delete, modify, firewall."""

from __future__ import annotations

from mockcloud import upctl_firewall, upctl_private
from mockcloud import upctl_paths as paths
from mockcloud.upctl_exec import ApiError, CommandError, Result, server_not_found, simulated_wait
from mockcloud.upctl_output import details, table
from mockcloud.upctl_render import (
    FIREWALL_FIELDS,
    firewall_rule,
    server_details,
    server_ip_list,
    server_summary,
)
from mockcloud.upctl_world import power_off, power_on

TYPE_CHECKING = False  # typing is not imported at run time: the fake upctl starts once per call
if TYPE_CHECKING:
    from typing import Any

    from mockcloud.upctl_exec import Ctx
    from mockcloud.upctl_world import HostEntry


def _find(state: dict[str, Any], uuid: str) -> dict[str, Any]:
    server: dict[str, Any] | None = next((s for s in state["servers"] if s["uuid"] == uuid), None)
    if server is None:
        raise server_not_found(uuid)
    return server


def _storages(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["uuid"]: s for s in state["storages"]}


def _illegal(server: dict[str, Any], action: str) -> ApiError:
    return ApiError(f"The server is in state {server['state']} and cannot be {action}.", "SERVER_STATE_ILLEGAL", 409)


def _observe(server: dict[str, Any]) -> bool:
    """One `server show` poll: counts down a pending transition; True when the server just stopped."""
    pending = server.get("pending")
    if server.get("stuck") or not pending:
        return False
    if pending["polls"] > 0:
        pending["polls"] -= 1
        return False
    server["state"], server["pending"] = pending["to"], None
    return bool(pending["to"] == "stopped")


def _human_server(server: dict[str, Any]) -> str:
    common = details(
        [
            ("UUID:", server["uuid"]),
            ("Hostname:", server["hostname"]),
            ("Title:", server["title"]),
            ("Plan:", server["plan"]),
            ("Zone:", server["zone"]),
            ("State:", server["state"]),
            ("Firewall:", server["firewall"]),
        ],
        "Common",
    )
    ips = [
        [i["type"], a["address"], a["family"]] for i in server["networking"]["interfaces"] for a in i["ip_addresses"]
    ]
    storages = [
        [d["storage"], d["storage_title"], d["type"], d["address"], str(d["storage_size"])]
        for d in server["storage_devices"]
    ]
    labels = "".join(f"    {label['key']}={label['value']}\n" for label in server["labels"]["label"])
    return (
        common
        + ("\n  Labels:\n" + labels if labels else "")
        + "\n"
        + table(["UUID", "Title", "Type", "Address", "Size (GiB)"], storages)
        + "\n"
        + table(["Type", "IP Address", "Family"], ips)
        + "\n"
    )


def _guest_shut_down(ctx: Ctx, server: dict[str, Any]) -> None:
    """A guest that ran `shutdown -h` (mock host marker `guest-poweroff`) is reported stopped, as the API does."""
    host = ctx.world.host_for(server.get("pool_ipv4"))
    if host is None or server.get("state") != "started":
        return
    marker = paths.join(paths.parent(paths.pure(host.authorized_keys)), "guest-poweroff")
    if paths.exists(marker):
        paths.unlink(marker, missing_ok=True)
        server["state"], server["pending"] = "stopped", None


def show(ctx: Ctx, uuid: str, _cached: dict[str, Any]) -> Result:
    ctx.api("GET", f"/server/{uuid}")
    with ctx.world.transaction() as state:
        server = _find(state, uuid)
        _guest_shut_down(ctx, server)
        stopped = _observe(server)
        out = server_details(server, _storages(state))
    if stopped:
        power_off(ctx.world.host_for(server.get("pool_ipv4")))
    return Result(out, _human_server(out))


def list_servers(ctx: Ctx) -> Result:
    ctx.api("GET", "/server")
    servers = ctx.world.snapshot()["servers"]
    show_ips = ctx.parsed.string("show-ip-addresses") or "none"
    summaries = [server_summary(s) for s in servers]
    pairs = zip(summaries, servers, strict=True)
    rows = [[s["uuid"], s["hostname"], s["plan"], s["zone"], s["state"]] for s in servers]
    if show_ips == "none":
        return Result({"servers": summaries}, table(["UUID", "Hostname", "Plan", "Zone", "State"], rows))
    with_ips = [{**summary, "ip_addresses": server_ip_list(server, show_ips)} for summary, server in pairs]
    for row, entry in zip(rows, with_ips, strict=True):
        row.insert(2, ", ".join(ip["address"] for ip in entry["ip_addresses"]))
    return Result(
        {"servers": with_ips or None},
        table(["UUID", "Hostname", "IP addresses", "Plan", "Zone", "State"], rows),
    )


def _stop(ctx: Ctx, uuid: str, stop_type: str, wait: bool) -> dict[str, Any]:
    msg = f"Stopping server {uuid}"
    ctx.progress.started(msg)
    to_error = ctx.faults.get("stop_state") == "error"  # the stop lands the server in 'error' for good
    timed_out = wait and (bool(ctx.faults.get("wait_timeout")) or to_error)
    try:
        ctx.api("POST", f"/server/{uuid}/stop")
        with ctx.world.transaction() as state:
            server = _find(state, uuid)
            if stop_type not in ("soft", "hard"):
                raise ApiError(f"The stop type {stop_type} is invalid.", "STOP_TYPE_INVALID", 400)
            if server["state"] != "started":
                raise _illegal(server, "stopped")
            out = server_details(server, _storages(state))
            if to_error:
                server["state"], server["pending"], server["stuck"] = "error", None, "error"
            elif timed_out:
                server["pending"] = {"to": "stopped", "polls": int(ctx.faults.get("boot_polls", 1))}
            else:
                server["state"], server["pending"] = "stopped", None
    except CommandError as exc:
        raise ctx.failed(msg, exc) from exc
    if not timed_out and not to_error:
        power_off(ctx.world.host_for(server.get("pool_ipv4")))
    if wait:
        ctx.progress.update(msg, f"Waiting for server {uuid} to be in stopped state")
        simulated_wait(ctx)
        if timed_out:
            ctx.progress.warning(msg, "context deadline exceeded")
            return out
    ctx.progress.success(msg)
    return out


def stop(ctx: Ctx, uuid: str, _cached: dict[str, Any]) -> Result:
    return Result(_stop(ctx, uuid, ctx.parsed.string("type") or "soft", ctx.parsed.enabled("wait")))


def start(ctx: Ctx, uuid: str, _cached: dict[str, Any]) -> Result:
    msg = f"Starting server {uuid}"
    ctx.progress.started(msg)
    try:
        ctx.api("POST", f"/server/{uuid}/start")
        with ctx.world.transaction() as state:
            server = _find(state, uuid)
            if server["state"] != "stopped":
                raise _illegal(server, "started")
            server["state"], server["pending"] = "started", None
            out = server_details(server, _storages(state))
    except CommandError as exc:
        raise ctx.failed(msg, exc) from exc
    power_on(ctx.world.host_for(server.get("pool_ipv4")))
    ctx.progress.success(msg)
    return Result(out)


def delete(ctx: Ctx, uuid: str, cached: dict[str, Any]) -> Result:
    if ctx.parsed.enabled("stop") and cached.get("state") != "stopped":
        _stop(ctx, uuid, "hard", True)
    msg = f"Deleting server {uuid}"
    ctx.progress.started(msg)
    with_storages = ctx.parsed.enabled("delete-storages")
    if with_storages:
        ctx.progress.update(msg, f"Deleting server {uuid} and attached storages")
    host: HostEntry | None = None
    try:
        ctx.api("DELETE", f"/server/{uuid}/?storages=1" if with_storages else f"/server/{uuid}")
        with ctx.world.transaction() as state:
            server = _find(state, uuid)
            if server["state"] not in ("stopped", "error"):
                raise _illegal(server, "deleted")
            state["servers"].remove(server)
            attached = {d["uuid"] for d in server.get("storage_devices", [])}
            if with_storages:
                state["storages"] = [s for s in state["storages"] if s["uuid"] not in attached]
            for storage in state["storages"]:
                if storage["uuid"] in attached:
                    storage["server"] = None
            host = ctx.world.host_for(server.get("pool_ipv4"))
            upctl_private.detach(host, state, server)
    except CommandError as exc:
        raise ctx.failed(msg, exc) from exc
    power_off(host)
    upctl_firewall.remove(host)  # the next server bound to this host starts without a firewall
    if host is not None:
        import contextlib

        with contextlib.suppress(OSError), open(paths.pure(host.authorized_keys), "w", encoding="utf-8") as fh:
            fh.write("")
    ctx.progress.success(msg)
    return Result(none=True)


def modify(ctx: Ctx, uuid: str, _cached: dict[str, Any]) -> Result:
    p = ctx.parsed
    msg = f"Modifying server {uuid}"
    ctx.progress.started(msg)
    try:
        ctx.api("PUT", f"/server/{uuid}")
        with ctx.world.transaction() as state:
            server = _find(state, uuid)
            for flag, field in (
                ("hostname", "hostname"),
                ("title", "title"),
                ("plan", "plan"),
                ("boot-order", "boot_order"),
                ("simple-backup", "simple_backup"),
                ("time-zone", "timezone"),
                ("video-model", "video_model"),
                ("remote-access-type", "remote_access_type"),
                ("remote-access-password", "remote_access_password"),
            ):
                if p.string(flag):
                    server[field] = p.string(flag)
            for target, field, on, off in (
                ("firewall", "firewall", "on", "off"),
                ("metadata", "metadata", "yes", "no"),
                ("remote-access", "remote_access_enabled", "yes", "no"),
            ):
                if target in p.changed:
                    server[field] = on if p.enabled(target) else off
            if p.strings("label"):
                pairs = [item.partition("=") for item in p.strings("label")]
                server["labels"] = [{"key": key, "value": value} for key, _, value in pairs]
            out = server_details(server, _storages(state))
            changed = dict(server)
    except CommandError as exc:
        raise ctx.failed(msg, exc) from exc
    if "firewall" in p.changed:
        upctl_firewall.apply(ctx.world.host_for(changed.get("pool_ipv4")), changed)
    ctx.progress.success(msg)
    return Result(out)


def _cidr(flag: str, value: str) -> tuple[str, str]:
    import ipaddress

    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise CommandError(f"{flag} parse error: invalid CIDR address: {value}") from exc
    return str(network[0]), str(network[-1])


def firewall_create(ctx: Ctx, uuid: str, _cached: dict[str, Any]) -> Result:
    p = ctx.parsed
    if p.string("family") not in ("", "IPv4", "IPv6"):
        raise CommandError("invalid family, use either IPv4 or IPv6")
    rule: dict[str, Any] = {key: "" for key in FIREWALL_FIELDS}
    for key in FIREWALL_FIELDS:
        flag = key.replace("_", "-")
        if flag in p.values and key != "position":
            rule[key] = p.string(flag)
    if p.string("dest-ipaddress-block"):
        rule["destination_address_start"], rule["destination_address_end"] = _cidr(
            "dest-ipaddress-block", p.string("dest-ipaddress-block")
        )
    if p.string("src-ipaddress-block"):
        rule["source_address_start"], rule["source_address_end"] = _cidr(
            "src-ipaddress-block", p.string("src-ipaddress-block")
        )
    msg = f"Creating firewall rule for server {uuid}"
    ctx.progress.started(msg)
    try:
        ctx.api("POST", f"/server/{uuid}/firewall_rule")
        with ctx.world.transaction() as state:
            rules = _find(state, uuid)["firewall_rules"]
            position = p.integer("position") or len(rules) + 1
            if not 1 <= position <= 1000:
                raise ApiError("The firewall rule position is invalid.", "FIREWALL_RULE_POSITION_INVALID", 400)
            rules.insert(min(position, len(rules) + 1) - 1, rule)
            for index, item in enumerate(rules, start=1):
                item["position"] = index
            changed = dict(_find(state, uuid))
    except CommandError as exc:
        raise ctx.failed(msg, exc) from exc
    upctl_firewall.rules_changed(ctx.world.host_for(changed.get("pool_ipv4")), changed)
    ctx.progress.success(msg)
    return Result(firewall_rule(rule))


def firewall_show(ctx: Ctx, uuid: str, _cached: dict[str, Any]) -> Result:
    ctx.api("GET", f"/server/{uuid}/firewall_rule")
    server = _find(ctx.world.snapshot(), uuid)
    rules = [firewall_rule(r) for r in server["firewall_rules"]]
    rows = [
        [
            r.get("position", ""),
            r.get("action", ""),
            r.get("source_address_start", "Any"),
            r.get("destination_address_start", "Any"),
            r.get("direction", ""),
            r.get("protocol", "Any"),
        ]
        for r in rules
    ]
    human = (
        "  Firewall rules:\n"
        + table(["#", "Action", "Source", "Destination", "Dir", "Proto"], rows)
        + f"\n  Enabled: {'yes' if server['firewall'] == 'on' else 'no'}\n"
    )
    return Result({"firewall_rules": rules or None}, human)


def firewall_delete(ctx: Ctx, uuid: str, _cached: dict[str, Any]) -> Result:
    position = ctx.parsed.integer("position")
    if not 1 <= position <= 1000:
        raise CommandError("invalid position (1-1000 allowed)")
    msg = f"Deleting firewall rule {position} from server {uuid}"
    ctx.progress.started(msg)
    try:
        ctx.api("DELETE", f"/server/{uuid}/firewall_rule/{position}")
        with ctx.world.transaction() as state:
            rules = _find(state, uuid)["firewall_rules"]
            if position > len(rules):
                raise ApiError("The firewall rule does not exist.", "FIREWALL_RULE_NOT_FOUND", 404)
            del rules[position - 1]
            for index, item in enumerate(rules, start=1):
                item["position"] = index
            changed = dict(_find(state, uuid))
    except CommandError as exc:
        raise ctx.failed(msg, exc) from exc
    upctl_firewall.rules_changed(ctx.world.host_for(changed.get("pool_ipv4")), changed)
    ctx.progress.success(msg)
    return Result(none=True)
