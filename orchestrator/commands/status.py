"""`orchestrator status [NAME]`: local state plus what the cloud and the engine say right now.

Every deployment is checked live by default: the server's state (one upctl call) and the engine's health (one
probe of each readiness check, no waiting), all deployments and both checks at once in threads, each bounded by
its own timeout. Each live check is reported on its own (`checked`, and the reason when it could not be made), so
being offline or without credentials never fails the command. `--local` asks nobody.

The state is read by state_doc.py's light reader, and nothing here imports pydantic, typer or httpx before the
live checks start: entry.py runs this module directly for the usual invocations (bench/cli_startup.py).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from orchestrator.commands import status_cluster
from orchestrator.commands.status_cluster import NODE_DETAIL, is_cluster
from orchestrator.durations import format_duration
from orchestrator.errors import OrchestratorError
from orchestrator.server_fate import NOT_RUNNING, not_running
from orchestrator.state_doc import DeploymentView, StateReader, unreadable

if TYPE_CHECKING:
    from concurrent.futures import Future

UPCTL_TIMEOUT = 15.0
PROBE_TIMEOUT = 5.0
LIVE_DEADLINE = UPCTL_TIMEOUT + 5.0  # a check still running then is reported as not checked
WORKERS = 8
LIVE_MODULES = (
    "orchestrator.context",
    "orchestrator.providers.base",
    "orchestrator.providers.upctl_provider",
    "orchestrator.transports.local",
    "orchestrator.config",
    "orchestrator.engines",
    "orchestrator.health",
    "orchestrator.secrets",
)  # what _server_live and _engine_live import


def _server_live(dep: DeploymentView) -> dict[str, Any]:
    from orchestrator.context import default_provider
    from orchestrator.providers.base import ServerNotFound
    from orchestrator.transports.local import run_local

    if dep.server is None:
        return {"checked": False, "state": None, "error": "no server recorded"}
    show = default_provider().show(dep.server.uuid)
    try:
        info = show.parse(run_local(show.action.argv, UPCTL_TIMEOUT))
    except ServerNotFound:
        return {"checked": True, "state": "gone", "error": None}
    except OrchestratorError as exc:
        return {"checked": False, "state": None, "error": exc.message}
    return {"checked": True, "state": info.state, "error": None}


def _engine_live(dep: DeploymentView) -> dict[str, Any]:
    """One probe of each readiness check the deploy waited for (no waiting, no SSH): ok, or the first failure."""
    import dataclasses

    from orchestrator.config import DeploymentConfig
    from orchestrator.engines import engine_for
    from orchestrator.health import run_check
    from orchestrator.secrets import API_KEY, load_secrets

    if is_cluster(dep):
        return {"checked": False, "ok": None, "detail": NODE_DETAIL}
    if dep.engine is None or dep.server is None or not dep.server.ip:
        return {"checked": False, "ok": None, "detail": "no engine recorded"}
    try:
        cfg = DeploymentConfig.model_validate(dep.config)
        secrets = load_secrets(cfg, create_api_key=False)[0]
        checks = engine_for(cfg).readiness(dep.server.ip, API_KEY in secrets)
        detail = ""
        for check in checks:
            once = dataclasses.replace(check, wait=None, liveness=None, log_tail=None, timeout=PROBE_TIMEOUT)
            detail = run_check(once, secrets).stdout
    except OrchestratorError as exc:
        return {"checked": True, "ok": False, "detail": exc.message}
    except ValueError as exc:  # the config snapshot no longer validates
        return {"checked": False, "ok": None, "detail": f"cannot read the config snapshot: {exc}"}
    return {"checked": True, "ok": True, "detail": detail}


def live_checks(deps: list[DeploymentView]) -> list[dict[str, Any]]:
    """The live document of each deployment: every server and engine check concurrently, each one bounded."""
    from concurrent.futures import ThreadPoolExecutor

    if not deps:
        return []
    _preload()
    now = time.time()
    pool = ThreadPoolExecutor(max_workers=min(WORKERS, 2 * len(deps)), thread_name_prefix="status")
    try:
        futures = [(pool.submit(_server_live, d), pool.submit(_engine_live, d)) for d in deps]
        deadline = time.monotonic() + LIVE_DEADLINE
        docs = []
        for dep, (server, engine) in zip(deps, futures, strict=True):
            srv = _result(server, deadline, {"checked": False, "state": None, "error": _late()})
            eng = _result(engine, deadline, {"checked": False, "ok": None, "detail": _late()})
            docs.append(_live_doc(dep, now, srv, eng))
        return docs
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _preload() -> None:
    """The checks' modules, imported here first: threads importing the same modules at once can deadlock."""
    import importlib

    for module in LIVE_MODULES:
        importlib.import_module(module)


def _late() -> str:
    return f"no answer within {LIVE_DEADLINE:.0f}s"


def _result(future: Future[dict[str, Any]], deadline: float, late: dict[str, Any]) -> dict[str, Any]:
    from concurrent.futures import TimeoutError as FuturesTimeout

    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FuturesTimeout:
        return late
    except Exception as exc:  # noqa: BLE001 - a check that breaks says so; status itself never fails for it
        key = "error" if "error" in late else "detail"
        return {**late, key: f"check failed: {type(exc).__name__}: {exc}"}


def _live_doc(dep: DeploymentView, now: float, srv: dict[str, Any], eng: dict[str, Any]) -> dict[str, Any]:
    """The live document: what the cloud and the engine said, with a failed probe of a stopped or deleted server
    explained by the server's state, and whether it bills now (``None``: the server's state is not known)."""
    from orchestrator.cost import cost_so_far, price_of

    state = srv["state"] if srv["checked"] else None
    if state in NOT_RUNNING and not eng["ok"]:
        what, remedy = not_running(state, dep.name, dep.config_path, replica=bool(dep.document.get("replicas")))
        eng = {"checked": True, "ok": False, "detail": f"{what}: {remedy}"}
    price, currency = price_of(dep.config)
    until = now
    if state == "stopped" and dep.auto_stop_at is not None and dep.auto_stop_at <= now:
        until = max(dep.auto_stop_at, _since(dep))  # the timer powered it off: no started hour after that
    return {
        "checked_at": now,
        "server": srv,
        "engine_health": eng,
        "ttl_left_s": round(dep.auto_stop_at - now, 1) if dep.auto_stop_at is not None else None,
        "billing": None if state is None else state not in NOT_RUNNING,
        "price_per_hour": price,
        "currency": currency if price is not None else None,
        "cost_so_far": round(cost_so_far(price, _since(dep), until), 4) if price and dep.server else None,
    }


def live(dep: DeploymentView) -> dict[str, Any]:
    """One deployment's live document (server state, engine health, TTL left, price and cost so far)."""
    return live_checks([dep])[0]


def live_lines(doc: dict[str, Any], name: str | None = None) -> list[str]:
    srv, eng = doc["server"], doc["engine_health"]
    lines = [
        f"live {name}:" if name else "live:",
        "  server:  " + (srv["state"] if srv["checked"] else f"not checked: {srv['error']}"),
    ]
    if not eng["checked"]:
        lines.append(f"  engine:  not checked: {eng['detail']}")
    else:
        lines.append(f"  engine:  {'healthy' if eng['ok'] else 'UNHEALTHY'}: {eng['detail']}")
    if doc["price_per_hour"] is not None:
        per_hour = f"{doc['price_per_hour']:.2f} {doc['currency']} per hour"
        so_far = f", {doc['cost_so_far']:.2f} {doc['currency']} so far" if doc["cost_so_far"] is not None else ""
        if doc["billing"] is False:
            per_hour = f"not billing now (server {srv['state']}; {per_hour} while started)"
        lines.append(f"  cost:    {per_hour}{so_far}")
    return lines


# ---------------------------------------------------------------- the local part: the table and the JSON document


def auto_stop_text(at: float | None, now: float) -> str:
    if at is None:
        return "-"
    if at <= now:
        return f"due {format_duration(now - at)} ago"
    return f"in {format_duration(at - now)}"


def _since(d: DeploymentView) -> float:
    """When the view's server started billing (a fleet's replica: its own server's record time)."""
    from orchestrator.cost import billing_since

    return billing_since(d.server.created_at if d.server else None, d.created_at)


def cost_text(d: DeploymentView, now: float) -> str:
    """ "1.92 EUR/h, 3.84 so far" from the config snapshot's provider.price_per_hour; "-" without a price."""
    from orchestrator.cost import cost_so_far, price_of

    price, currency = price_of(d.config)
    if price is None:
        return "-"
    if d.server is None:
        return f"{price:.2f} {currency}/h"
    return f"{price:.2f} {currency}/h, {cost_so_far(price, _since(d), now):.2f} so far"


def servers_of(d: DeploymentView) -> list[tuple[str, DeploymentView]]:
    """(row name, view) per server: the deployment itself, or each replica of a fleet as `NAME/rI` (a view with
    the replica's server, engine, health and status)."""
    if not d.replicas:
        return [(d.name, d)]
    return [
        (
            f"{d.name}/r{r.number}",
            d._replace(
                status=r.status, server=r.server, engine=r.engine, health=r.health, auto_stop_at=r.auto_stop_at,
                last_error=r.last_error, replicas=[],
            ),
        )
        for r in d.replicas
    ]  # fmt: skip


def status_rows(deps: list[DeploymentView]) -> list[str]:
    header = ("NAME", "STATUS", "SERVER", "IP", "PLAN", "ENGINE", "ENDPOINT", "HEALTH", "AUTO-STOP", "COST")
    rows = [header]
    now = time.time()
    for name, d in [row for dep in deps for row in servers_of(dep)]:
        srv, eng, h = d.server, d.engine, d.health
        health = "-"
        if h is not None:
            health = f"{'ok' if h.ok else 'FAILED'} {format_duration(now - h.checked_at)} ago"
        rows.append(
            (
                name,
                d.status,
                srv.uuid if srv else "-",
                (srv.ip or "-") if srv else "-",
                srv.plan if srv else "-",
                f"{eng.kind}:{eng.served_name}" if eng else "-",
                eng.endpoint if eng else "-",
                health,
                auto_stop_text(d.auto_stop_at, now),
                cost_text(d, now),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def public(dep: DeploymentView) -> dict[str, Any]:
    """A deployment for `status --json`: the state document without the config snapshot, times in ISO-8601 UTC."""
    from orchestrator.cost import price_of

    data = dict(dep.document)
    data.pop("config", None)
    if not data.get("replicas"):
        data.pop("replicas", None)  # one server: the document as it always was
    price, currency = price_of(dep.config)
    data["cost"] = {"price_per_hour": price, "currency": currency if price is not None else None,
                    "so_far": so_far(dep, price)}  # fmt: skip
    result = iso_times(data)
    assert isinstance(result, dict)
    return result


def iso_times(value: object, key: str = "") -> object:
    """Every `*_at` field (created_at, updated_at, auto_stop_at, health.checked_at, steps.*.finished_at, ...),
    stored as Unix seconds, becomes e.g. "2026-05-04T12:00:00Z"."""
    if isinstance(value, dict):
        return {k: iso_times(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [iso_times(v) for v in value]
    if key.endswith("_at") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))
    return value


# ---------------------------------------------------------------- the command


def status(name: str | None, *, orphans: bool, local: bool, as_json: bool, debug: bool) -> None:
    """`orchestrator status [NAME] [--local] [--orphans] [--json]` (cli.py declares it; entry.py may call it)."""
    from orchestrator.console import guard, set_json_errors
    from orchestrator.errors import StateError

    set_json_errors(as_json)  # every branch (--orphans included): a failure prints the JSON error object
    if orphans:
        _orphans(as_json=as_json, debug=debug)
        return
    with guard(debug, as_json=as_json) as console:
        reader = StateReader()
        deps: list[DeploymentView]
        broken: list[StateError] = []  # state files that could not be read: reported after the others
        if name:
            one = reader.load(name)
            if one is None:
                raise StateError(f"no deployment named {name!r} in {reader.dir}", "see `orchestrator status`")
            deps = [one]
        else:
            deps, broken = reader.all_readable()
        rows = [row for d in deps for row in servers_of(d)]
        deadline = time.monotonic() + LIVE_DEADLINE
        asked = {} if local else status_cluster.start(deps)  # each Ray cluster's head, meanwhile
        lives = [] if local else live_checks([view for _, view in rows])
        late = {"checked": False, "ok": None, "nodes": None, "serve": None, "detail": _late()}
        clusters = {n: _result(f, deadline, late) for n, f in asked.items()}
        if as_json:
            docs = [public(d) for d in deps]
            if lives:
                _attach_live(deps, docs, lives, clusters)
            if broken:  # one document: the error object, the deployments that could be read in it
                console.report = {"deployments": docs}
                raise unreadable(broken)
            console.out(json.dumps(docs, indent=2))
            return
        if not deps and not broken:
            console.out(f"no deployments in {reader.dir}")
            return
        for line in status_rows(deps) if deps else []:
            console.out(line)
        single = name is not None and len(rows) == 1
        for (row_name, _), live_doc in zip(rows, lives, strict=False):
            for line in live_lines(live_doc, None if single else row_name):
                console.out(line)
        for dep_name, cluster_doc in clusters.items():
            for line in status_cluster.lines(dep_name, cluster_doc):
                console.out(line)
        for line in fleet_lines(deps, lives, clusters):
            console.out(line)
        if broken:
            raise unreadable(broken)


def _attach_live(
    deps: list[DeploymentView],
    docs: list[dict[str, Any]],
    lives: list[dict[str, Any]],
    clusters: dict[str, dict[str, Any]],
) -> None:
    """`live` of each deployment; a fleet's in each replica's entry, and a count of the healthy ones at the top
    (a Ray cluster's: its started nodes when its app answers, and what its head said in `cluster`)."""
    for (dep, mine), doc in zip(per_deployment(deps, lives), docs, strict=True):
        if not dep.replicas:
            doc["live"] = iso_times(mine[0])
            continue
        for entry, live_doc in zip(doc["replicas"], mine, strict=True):
            entry["live"] = iso_times(live_doc)
        ray = clusters.get(dep.name)
        doc["live"] = {"checked_at": iso_times(mine[0]["checked_at"], "checked_at"), "replicas": len(mine),
                       "healthy": healthy_count(mine, ray)}  # fmt: skip
        if ray is not None:
            doc["live"]["cluster"] = ray


def per_deployment(
    deps: list[DeploymentView], lives: list[dict[str, Any]]
) -> list[tuple[DeploymentView, list[dict[str, Any]]]]:
    """Each deployment with its servers' live documents (``lives``: one per server row, in order; [] with
    --local)."""
    out, at = [], 0
    for dep in deps:
        n = max(1, len(dep.replicas))
        out.append((dep, lives[at : at + n]))
        at += n
    return out


def healthy_count(mine: list[dict[str, Any]], ray: dict[str, Any] | None) -> int:
    """A fleet's replicas started and answering; a Ray cluster's started nodes while its app answers, else 0."""
    if ray is not None:
        return sum(1 for x in mine if x["server"]["state"] == "started") if ray["ok"] else 0
    return sum(1 for x in mine if x["engine_health"]["ok"] and x["server"]["state"] == "started")


def fleet_lines(
    deps: list[DeploymentView], lives: list[dict[str, Any]], clusters: dict[str, dict[str, Any]]
) -> list[str]:
    """One line per fleet (or Ray cluster): how many replicas answer (live; a cluster's: its started nodes while
    its app answers), and what all its servers cost so far (cost.so_far)."""
    from orchestrator.cost import price_of

    lines = []
    for dep, mine in per_deployment(deps, lives):
        if not dep.replicas:
            continue
        parts = []
        if mine:
            parts.append(f"{healthy_count(mine, clusters.get(dep.name))} of {len(mine)} healthy")
        price, currency = price_of(dep.config)
        total = so_far(dep, price)
        if price is not None and total is not None:
            servers = sum(1 for r in dep.replicas if r.server is not None)
            parts.append(f"{servers} server(s) at {price:.2f} {currency}/h, {total:.2f} {currency} so far in all")
        if parts:
            what = "cluster" if is_cluster(dep) else "fleet"
            lines.append(f"{what} {dep.name}: " + "; ".join(parts))
    return lines


def so_far(dep: DeploymentView, price: float | None) -> float | None:
    """Every server's started hours at ``price`` (a fleet's replicas each from its own server's creation), and
    those of the servers it deleted; None without a price or a server."""
    from orchestrator.cost import cost_so_far

    if not price:
        return None
    now, retired = time.time(), int(dep.document.get("retired_hours") or 0)
    servers = [v for _, v in servers_of(dep) if v.server is not None]
    if not servers and not retired:
        return None
    return round(sum(cost_so_far(price, _since(v), now) for v in servers) + price * retired, 4)


def _orphans(*, as_json: bool, debug: bool) -> None:
    from orchestrator.commands.orphans import describe_orphans, find_orphans, orphans_document
    from orchestrator.console import guard

    with guard(debug, as_json=as_json) as console:
        owner, found = find_orphans()
        if as_json:
            console.out(json.dumps(orphans_document(owner, found), indent=2))
        else:
            describe_orphans(console, owner, found)
