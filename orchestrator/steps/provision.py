"""provision: pick the GPU plan, check zone and stock, create the server, confirm it started, record it first."""

from __future__ import annotations

import re
import time

from orchestrator.actions import Pause
from orchestrator.context import EXISTING_SERVER_ONLY, NETWORK_FACT, StepContext, StepGen
from orchestrator.errors import CapacityError, ConfigError, ProviderError, StateError
from orchestrator.owner import OWNER_FACT, PLACEHOLDER, Owner, load_owner
from orchestrator.providers.base import CreateSpec, PlanInfo, ServerInfo, ServerNotFound, server_labels
from orchestrator.providers.catalogue import (
    check_gpu_availability,
    check_zone,
    plan_matches,
    resolve_template,
    select_plan,
)
from orchestrator.shared_reads import shared_read
from orchestrator.state import ServerRecord

LITERAL_PLAN = re.compile(r"\^?([A-Za-z0-9-]+)\$?")


def _record(ctx: StepContext, srv: ServerInfo) -> None:
    rec = ctx.dep.server
    if rec is None or rec.uuid != srv.uuid:
        rec = ServerRecord(uuid=srv.uuid, created_at=time.time())
        ctx.dep.server = rec
    rec.hostname = srv.hostname or rec.hostname
    rec.plan = srv.plan or rec.plan
    rec.zone = srv.zone or rec.zone
    rec.state = srv.state
    rec.ip = srv.public_ipv4 or rec.ip
    rec.private_ip = srv.private_ipv4 or rec.private_ip
    ctx.save()


def wait_started(ctx: StepContext) -> StepGen:
    """Poll `server show` until started: upctl's --wait exits 0 even when it timed out."""
    deadline = time.monotonic() + ctx.cfg.provider.wait_started
    while True:
        show = ctx.provider.show(ctx.server_ref, "confirm the server state")
        r = yield show.action
        if not r.known:
            return None
        srv = show.parse(r)
        _record(ctx, srv)
        if srv.state == "started":
            break
        if srv.state == "error":
            # Not worth 15 minutes of polling: say so now (and the server is recorded, so teardown removes it).
            raise ProviderError(
                f"server {srv.uuid} is in state 'error' (a problem on UpCloud's side) instead of 'started'",
                f"it is recorded and may be billing: remove it with `orchestrator teardown {ctx.cfg.name}`, "
                f"or check `upctl server show {srv.uuid}` and the UpCloud status page",
            )
        if time.monotonic() > deadline:
            raise ProviderError(
                f"server {srv.uuid} is still '{srv.state}' after {ctx.cfg.provider.wait_started:.0f}s",
                f"it is recorded and may be billing: check `upctl server show {srv.uuid}`, "
                f"or remove it with `orchestrator teardown {ctx.cfg.name}`",
                transient=srv.state == "maintenance",
            )
        yield Pause(5.0, f"server is '{srv.state}', waiting for 'started'")
    if not (ctx.dep.server and ctx.dep.server.ip):
        raise ProviderError(
            f"server {ctx.server_ref} has no public IPv4 address",
            f"check its networking with `upctl server show {ctx.server_ref}`",
        )
    return None


def _whose(srv: ServerInfo, owner: Owner) -> str:
    if not srv.is_ours:
        return "not made by orchestrator"
    if srv.owner is None:
        return "made by an orchestrator without an owner label (an older version); not adopted"
    if srv.owner != owner.id:
        return f"another owner's: {srv.owner_name or '?'} (id {srv.owner}); not adopted"
    return f"this installation's deployment {srv.deployment or '?'}"


def _adopt_existing(ctx: StepContext, hostname: str, owner: Owner, plans: list[PlanInfo] | None) -> StepGen:
    """Before any plan or zone is tried: a server of this deployment and owner that is not in state (an
    interrupted create, whatever plan it got) is adopted, not duplicated; anyone else's with our hostname is a
    clash, never adopted."""
    listing = ctx.provider.list_servers("is a server with this hostname already there?")
    r = yield from shared_read(ctx.facts, listing.action)  # taken before this run's creates: see shared_reads.py
    if not r.known:
        return None
    mine: list[ServerInfo] = []
    for summary in listing.parse(r):
        if summary.hostname.lower() != hostname.lower():
            continue
        show = ctx.provider.show(summary.uuid, "whose server is it?")
        try:
            srv = show.parse((yield show.action))
        except ServerNotFound:
            continue  # deleted meanwhile
        if not (srv.owned_by(owner.id) and srv.deployment == ctx.cfg.name):
            raise ConfigError(
                f"a server with hostname {hostname!r} already exists ({srv.uuid}, {_whose(srv, owner)})",
                "set provider.hostname (or the deployment name) to another value; nothing was changed"
                + (
                    "\nif it is a leftover of yours: `orchestrator status --orphans` lists it, and "
                    "`orchestrator teardown --orphans --include-foreign` removes it"
                    if srv.is_ours and srv.owner != owner.id
                    else ""
                ),
                field="provider.hostname",
            )
        mine.append(srv)
    if len(mine) > 1:
        raise ProviderError(
            f"{len(mine)} servers of deployment {ctx.cfg.name} exist and none is in local state: "
            + ", ".join(m.uuid for m in mine),
            "remove them with `orchestrator teardown --orphans`, then deploy again",
        )
    if not mine:
        return None
    srv = mine[0]
    ctx.notify(f"found server {srv.uuid} of this deployment that was not in local state; adopting it")
    _record(ctx, srv)
    assert ctx.dep.server is not None
    plan = next((p for p in plans if p.name == srv.plan), None) if plans is not None else None
    if plan is not None:
        ctx.dep.server.gpu_amount, ctx.dep.server.gpu_model = plan.gpu_amount, plan.gpu_model
    ctx.save()
    if srv.state == "stopped":
        start = ctx.provider.start(srv.uuid, "start the stopped server")
        start.check((yield start.action))
    yield from wait_started(ctx)
    return f"adopted server {srv.uuid} ({ctx.ip})"


def _config_drift(ctx: StepContext, srv: ServerInfo, recreate: str) -> str:
    """A recorded server keeps its plan and zone whatever the config says now: when neither provider.plan/zone nor a
    fallback asks for what it runs, say so (notified and in the step's note) instead of carrying on silently."""
    pc = ctx.cfg.provider
    wanted = [(pc.plan, pc.zone)] + [(f.plan or pc.plan, f.zone or pc.zone) for f in pc.fallbacks]
    if not srv.plan or any(plan_matches(srv.plan, plan) and srv.zone == zone for plan, zone in wanted):
        return ""
    ctx.notify(
        f"server {srv.uuid} runs plan {srv.plan} in {srv.zone}, not what the config asks for (provider.plan "
        f"{pc.plan!r} in {pc.zone}); it is kept: a plan or zone changes only with a new server, `{recreate}`"
    )
    return f"; it runs {srv.plan} in {srv.zone}, not provider.plan {pc.plan!r} in {pc.zone} (kept)"


def _owner(ctx: StepContext) -> Owner:
    """The session puts this installation's owner in the facts; a dry-run on a fresh home has none yet."""
    owner = ctx.facts.get(OWNER_FACT)
    return owner if isinstance(owner, Owner) else (load_owner() or PLACEHOLDER)


def provision(ctx: StepContext) -> StepGen:
    pc = ctx.cfg.provider
    up = ctx.provider
    existing_only = bool(ctx.facts.get(EXISTING_SERVER_ONLY))
    again = f"orchestrator redeploy {ctx.dep.config_path or ctx.cfg.name} --recreate"
    if ctx.dep.server is not None:
        show = up.show(ctx.dep.server.uuid, "is the recorded server still there?")
        r = yield show.action
        if not r.known:
            return f"server {ctx.dep.server.uuid} already recorded"
        err = show.error(r)
        if err is not None:
            if not isinstance(err, ServerNotFound):
                raise err
            gone = ctx.dep.server.uuid
            ctx.dep.server = None
            ctx.save()
            if existing_only:
                raise StateError(
                    f"the recorded server {gone} no longer exists; redeploy does not create servers",
                    f"create a new one with `{again}`",
                )
            ctx.notify(f"recorded server {gone} no longer exists; creating a new one")
        else:
            srv = show.parse(r)
            _record(ctx, srv)
            if srv.state == "stopped":
                start = up.start(srv.uuid, "start the stopped server")
                start.check((yield start.action))
            if srv.state != "started":
                yield from wait_started(ctx)
            drift = _config_drift(ctx, srv, again)
            if srv.state == "stopped":
                return f"server {srv.uuid} was stopped: started it again ({ctx.ip}){drift}"
            return f"server {srv.uuid} already exists ({ctx.ip}){drift}"
    elif existing_only:
        raise StateError(
            f"deployment {ctx.cfg.name} has no server recorded; redeploy does not create servers",
            f"create one with `{again}` (or `orchestrator deploy {ctx.dep.config_path or ctx.cfg.name}`)",
        )

    # The catalogue: a fleet's replicas share one answer to each read (shared_reads.py).
    plans_call = up.plans("list plans")
    plans_r = plans_call.check((yield from shared_read(ctx.facts, plans_call.action)))
    zones_call = up.zones("check the zone")
    zones_r = zones_call.check((yield from shared_read(ctx.facts, zones_call.action)))
    dev_call = up.zone_devices("check GPU stock in the zone")
    dev_r = dev_call.check((yield from shared_read(ctx.facts, dev_call.action)))
    tmpl_call = up.templates("resolve the OS template")
    r = tmpl_call.check((yield from shared_read(ctx.facts, tmpl_call.action)))
    os_ref = resolve_template(tmpl_call.parse(r), pc.template).uuid if r.known else pc.template
    plans = plans_call.parse(plans_r) if plans_r.known else None

    hostname = pc.hostname or ctx.cfg.name
    owner = _owner(ctx)
    labels = server_labels(ctx.cfg.name, owner.labels(), pc.labels, ctx.replica)
    adopted = yield from _adopt_existing(ctx, hostname, owner, plans)
    if adopted:
        return adopted

    network = ctx.facts.get(NETWORK_FACT)  # a cluster's servers join its private network
    if not isinstance(network, str):
        network = None
    candidates = [(pc.plan, pc.zone)] + [(f.plan or pc.plan, f.zone or pc.zone) for f in pc.fallbacks]
    tried: list[str] = []
    last: CapacityError | None = None
    for pattern, zone in candidates:
        if plans is not None:
            plan = select_plan(plans, pattern)
            plan_name, gpu_amount, gpu_model = plan.name, plan.gpu_amount, plan.gpu_model
        else:
            literal = LITERAL_PLAN.fullmatch(pattern)
            plan_name = literal.group(1) if literal else f"<plan matching {pattern}>"
            gpu_amount, gpu_model = 0, ""
        if zones_r.known:
            check_zone(zones_call.parse(zones_r), zone)
        tried.append(f"{plan_name} in {zone}")
        try:
            if dev_r.known and gpu_amount:
                check_gpu_availability(dev_call.parse(dev_r), zone, plan_name)
        except CapacityError as exc:
            last = exc
            ctx.notify(
                f"no {plan_name} stock in {zone}"
                + ("; trying the next fallback" if pattern != candidates[-1][0] or zone != candidates[-1][1] else "")
            )
            continue
        spec = CreateSpec(
            hostname=hostname,
            title=f"{ctx.cfg.name} (orchestrator)",
            zone=zone,
            plan=plan_name,
            os=os_ref,
            os_storage_size=pc.storage_gb,
            ssh_keys=(str(ctx.cfg.ssh.public_key_path),),
            labels=labels,
            wait=True,
            private_networks=(network,) if network else (),
        )
        create = up.create(spec, "create the server", timeout=pc.wait_started + 300)
        asked = time.time()  # billing starts when the API takes the create, before upctl's --wait returns
        r = yield create.action
        if not r.known:
            ctx.mark_created()  # the plan's server: the one this run would create
            if len(candidates) > 1:
                ctx.notify("on no capacity: " + ", ".join(f"{p} in {z}" for p, z in candidates[1:]))
            break
        try:
            srv = create.parse(r)
        except CapacityError as err:
            last = err
            ctx.notify(f"no capacity for {plan_name} in {zone}: {err.message}")
            continue
        # Recorded before anything else can fail: from here on `teardown` can always find it.
        ctx.dep.server = ServerRecord(
            uuid=srv.uuid,
            hostname=srv.hostname,
            plan=plan_name,
            zone=zone,
            state=srv.state,
            ip=srv.public_ipv4,
            private_ip=srv.private_ipv4,
            gpu_amount=gpu_amount,
            gpu_model=gpu_model,
            created_at=asked,
        )
        ctx.save()
        ctx.mark_created()
        warning = up.wait_warning(r)
        if warning:
            ctx.notify(f"upctl: {warning}; checking the state myself")
        break
    else:
        assert last is not None
        raise CapacityError(
            f"no GPU capacity: tried {', '.join(tried)}",
            "add provider.fallbacks (other plans or zones), or retry later; nothing was created",
        ) from last
    yield from wait_started(ctx)
    if ctx.dep.server is None:
        return f"would create a server: {tried[-1]}"
    return f"server {ctx.dep.server.uuid} started, {ctx.ip}, {plan_name}"
