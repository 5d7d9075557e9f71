"""Teardown steps: stop and delete the server with its storages, confirm with the provider, then forget it."""

from __future__ import annotations

import time
from collections.abc import Generator

from orchestrator import known_hosts
from orchestrator.actions import Action, Pause, RemoveLocal, Result
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import TeardownIncomplete
from orchestrator.providers.base import ServerInfo, ServerNotFound
from orchestrator.providers.provider import Call
from orchestrator.secrets import generated_key_path


def destroy_server(ctx: StepContext) -> StepGen:
    srv = ctx.dep.server
    if srv is None:
        return "no server recorded"
    up = ctx.provider
    show = up.show(srv.uuid, "current server state")
    r = yield show.action
    storages: list[str] = []
    if r.known:
        try:
            info = show.parse(r)
        except ServerNotFound:
            ctx.dep.server = None
            ctx.save()
            ctx.mark_found_gone()
            return f"server {srv.uuid} is already gone"
        state = info.state
        storages = list(info.storages)
    else:
        state = "started"
    if state == "maintenance":
        # UpCloud refuses to stop a server under maintenance (being created or changed): wait it out, bounded.
        state = yield from _wait_out_maintenance(ctx, show)
    if state not in ("stopped", "error"):  # a server in 'error' cannot be stopped; deleting it is the way out
        stop = up.stop(srv.uuid, "stop the server", wait=True, timeout=1200)
        stop.check((yield stop.action))
        deadline = time.monotonic() + 900
        while True:
            r = yield show.action
            state = show.parse(r).state if r.known else "stopped"
            if state in ("stopped", "error"):  # 'error': stop polling at once and try the delete
                break
            if time.monotonic() > deadline:
                raise TeardownIncomplete(
                    f"server {srv.uuid} did not stop within 15 minutes",
                    f"retry `orchestrator teardown {ctx.cfg.name}`; it is still billing",
                )
            yield Pause(5.0, "waiting for 'stopped'")
    delete = up.delete(srv.uuid, "delete the server and its storages", delete_storages=True, timeout=600)
    r = yield delete.action
    refused = delete.error(r)
    if state == "error" and refused is not None:
        raise TeardownIncomplete(
            f"server {srv.uuid} is in state 'error' and UpCloud refused to delete it: {refused.message}",
            f"it may be billing: retry `orchestrator teardown {ctx.cfg.name}` later ('error' clears on UpCloud's "
            "side), or ask UpCloud support",
        )
    delete.check(r)
    r = yield show.action
    if r.known and r.rc == 0:
        raise TeardownIncomplete(
            f"server {srv.uuid} still exists after delete",
            f"retry `orchestrator teardown {ctx.cfg.name}`; check `upctl server show {srv.uuid}`",
        )
    if r.known and not isinstance(show.error(r), ServerNotFound):
        raise TeardownIncomplete(
            f"could not confirm that server {srv.uuid} is gone: {r.stderr.strip()[-200:]}",
            f"check `upctl server show {srv.uuid}`",
        )
    if r.known:
        ctx.dep.server = None  # confirmed gone; a record kept for local leftovers must not point at it
        ctx.save()
    if storages:
        listing = up.list_storages("confirm storages gone")
        r = yield listing.action
        if r.ok:
            left = [s for s in storages if s in r.stdout]  # a substring test: no parse can fail here
            if left:
                raise TeardownIncomplete(
                    f"storage(s) left after deleting the server: {', '.join(left)}",
                    f"delete them with `upctl storage delete {' '.join(left)}`",
                )
    return f"server {srv.uuid} and its storages deleted (confirmed)"


MAINTENANCE_WAIT_S = 900.0


def _wait_out_maintenance(ctx: StepContext, show: Call[ServerInfo]) -> Generator[Action, Result, str]:
    srv = ctx.server_ref
    ctx.notify(f"server {srv} is in 'maintenance': waiting for it to end before stopping it")
    deadline = time.monotonic() + MAINTENANCE_WAIT_S
    while True:
        yield Pause(5.0, "waiting for 'maintenance' to end")
        r = yield show.action
        state = show.parse(r).state if r.known else "started"
        if state != "maintenance":
            return state
        if time.monotonic() > deadline:
            raise TeardownIncomplete(
                f"server {srv} is still in 'maintenance' after {MAINTENANCE_WAIT_S / 60:.0f} minutes: "
                "UpCloud refuses to stop or delete it until that ends",
                f"it may be billing: retry `orchestrator teardown {ctx.cfg.name}` later, "
                f"or check `upctl server show {srv}`",
            )


def forget(ctx: StepContext) -> StepGen:
    """Forget the deployment, unless something local is still there: then keep the record for a re-run."""
    found = ctx.facts.get("incomplete")
    incomplete = [str(x) for x in found] if isinstance(found, list) else []
    mon = ctx.dep.monitoring
    net = ctx.dep.network and f"private network {ctx.dep.network.uuid}"
    left = [x for x in (mon.prometheus_config and f"scrape job {mon.job}", mon.file_sd, mon.run_metrics, net) if x]
    if incomplete or left:
        ctx.dep.engine = ctx.dep.health = None  # they lived on the server, which is gone
        ctx.save()
        what = ", ".join(left) or "; ".join(incomplete)
        return f"record kept until a re-run removes what is left ({what})"
    key = generated_key_path(ctx.cfg.name)
    yield RemoveLocal(key)
    yield from known_hosts.forget(ctx.cfg.name)  # its pinned host key leaves $ORCHESTRATOR_HOME/known_hosts
    if ctx.store is not None:
        ctx.store.delete(ctx.cfg.name)
    return "deployment removed from local state (and its generated API key)"
