"""A fleet's output: each replica's progress prefixed `[rI]` (NDJSON events: a `replica` field), and the summary.

Replicas run in threads; each has its own ProgressReporter writing through a ReplicaPrinter, which prefixes the
lines and takes one lock per line, so lines of different replicas never interleave mid-line.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.progress import Mode, Printer, ProgressReporter

if TYPE_CHECKING:
    from orchestrator.actions import Action
    from orchestrator.errors import OrchestratorError
    from orchestrator.runner import StepOutcome
    from orchestrator.state import Deployment, ReplicaRecord


class ReplicaPrinter:
    """The console as one replica's reporter sees it: every line prefixed, one line at a time."""

    def __init__(self, base: Printer, prefix: str, lock: threading.Lock) -> None:
        self.base, self.prefix, self.lock = base, prefix, lock
        self.verbose = base.verbose
        self.report: dict[str, object] = {}  # the fleet's summary fills the console's own
        self.on_document: Callable[[dict[str, object]], None] | None = None

    def err(self, text: str) -> None:
        with self.lock:
            self.base.err(self.prefix + text)

    def out(self, text: str) -> None:
        with self.lock:
            self.base.out(self.prefix + text)

    def mask(self, text: str) -> str:
        return self.base.mask(text)


class ReplicaProgress(ProgressReporter):
    """A replica's reporter; once the fleet is interrupted (Ctrl-C reaches the main thread only), the replica's
    next action is refused with KeyboardInterrupt, which its Runner records as the step's interruption. A step
    records what it made before its next action (provision: the server, right after the create)."""

    cancel: threading.Event | None = None

    def action(self, action: Action) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise KeyboardInterrupt
        super().action(action)


def replica_reporter(
    fleet: ProgressReporter, index: int, lock: threading.Lock, cancel: threading.Event | None = None
) -> ProgressReporter:
    """Replica ``index``'s reporter: the fleet's mode (a live terminal display shows plain lines: several replicas
    at once do not fit one live region), lines prefixed `[rI] `, events carrying `"replica": I`."""
    mode: Mode = "plain" if fleet.mode == "rich" else fleet.mode
    prefix = "" if mode == "json" else f"[r{index}] "
    reporter = ReplicaProgress(ReplicaPrinter(fleet.c, prefix, lock), dry_run=fleet.dry_run, as_json=fleet.as_json,
                               mode=mode)  # fmt: skip
    reporter.cancel = cancel
    if reporter.events is not None:
        reporter.events.fields = {"replica": index}
    return reporter


@dataclass
class ReplicaOutcome:
    """What one replica's run did: its steps, and the error that stopped it (None: it went through)."""

    index: int
    outcomes: list[StepOutcome] = field(default_factory=list)
    error: OrchestratorError | None = None
    note: str = ""  # e.g. "removed (scaled down)", "not redeployed: an earlier replica failed"
    found_gone: bool = False  # teardown found its server already deleted (outside orchestrator)


def steps_doc(outcomes: list[StepOutcome]) -> list[dict[str, object]]:
    return [
        {"kind": o.kind, "status": o.status, "seconds": round(o.seconds, 3), "note": o.note, "actions": o.actions}
        for o in outcomes
    ]


def _replica_doc(rec: ReplicaRecord | None, index: int, result: ReplicaOutcome | None) -> dict[str, object]:
    srv = rec.server if rec else None
    eng = rec.engine if rec else None
    return {
        "index": index,
        "status": rec.status if rec else "removed",
        "ok": result is None or result.error is None,
        "error": result.error.message if result and result.error else None,
        "note": result.note if result else "",
        "server": srv.model_dump(mode="json") if srv else None,
        "endpoint": eng.endpoint if eng else None,
        "metrics_url": eng.metrics_url if eng else None,
        "steps": steps_doc(result.outcomes if result else []),
    }


def fleet_cost_doc(dep: Deployment) -> dict[str, object] | None:
    """A fleet's lifetime cost once its servers are gone: every server's started hours (those scaled down or
    removed after a failure earlier included, state.py's ``retired_hours``) at provider.price_per_hour; None
    without a price."""
    from orchestrator.cost import price_of

    price, currency = price_of(dep.config)
    if price is None:
        return None
    return {
        "price_per_hour": price,
        "currency": currency,
        "lifetime_s": round(time.time() - dep.created_at, 1),
        "billed_hours": dep.retired_hours,
        "total": round(price * dep.retired_hours, 4),
    }


def fleet_summary(
    reporter: ProgressReporter,
    command: str,
    dep: Deployment,
    results: list[ReplicaOutcome],
    fleet_outcomes: list[StepOutcome],
    failure: OrchestratorError | None,
    actions: int,
) -> None:
    """The fleet's summary: the JSON document (one entry per replica), or the text lines (one per replica)."""
    c = reporter.c
    reporter.close()
    by_index = {r.index: r for r in results}
    records = {r.index: r for r in dep.replicas}
    indices = sorted(set(by_index) | set(records))
    if reporter.as_json:
        doc: dict[str, object] = {
            "command": command,
            "deployment": dep.name,
            "dry_run": reporter.dry_run,
            "ok": failure is None,
            "replicas": [_replica_doc(records.get(i), i, by_index.get(i)) for i in indices],
            "steps": steps_doc(fleet_outcomes),
        }
        if not reporter.dry_run:
            doc["prometheus_config"] = dep.monitoring.prometheus_config
            doc["job"] = dep.monitoring.job
            cost = fleet_cost_doc(dep) if command == "teardown" else None
            if cost is not None:
                doc["cost"] = cost
        if failure is not None:
            c.report = doc
            return
        c.out(json.dumps(doc, indent=2))
        if reporter.events is not None:
            reporter.events.emit("summary", document=doc)
        return
    if reporter.dry_run:
        steps = sum(len(r.outcomes) for r in results) + len(fleet_outcomes)
        c.out(f"Dry run complete: {actions} actions in {steps} steps ({len(results)} replicas); nothing was changed.")
        return
    if failure is not None:
        return
    if command == "teardown":
        net = " and its private network" if any(o.kind == "delete-network" for o in fleet_outcomes) else ""
        found = sum(1 for r in results if r.found_gone)
        before = f" ({found} of them already gone)" if found else ""
        c.out(
            f"deployment {dep.name} removed: {len(results)} server(s){net} deleted and confirmed gone{before}, "
            "state forgotten"
        )
        cost = fleet_cost_doc(dep)
        if cost is not None:
            c.out(
                f"  cost:     ≈ {cost['total']:.2f} {cost['currency']} for {cost['billed_hours']} started "
                f"server-hour(s) at {cost['price_per_hour']} {cost['currency']} per hour (every server it had)"
            )
        return
    serving = [r for r in dep.replicas if r.status == "deployed"]
    c.out(f"deployment {dep.name} is serving on {len(serving)} replica(s)")
    for rec in dep.replicas:
        srv, eng = rec.server, rec.engine
        where = f"{srv.uuid} ({srv.plan}, {srv.zone}) at {srv.ip}" if srv else "no server"
        c.out(f"  r{rec.index}: {where}" + (f"  endpoint {eng.endpoint}" if eng else ""))
    gone = [r for r in results if r.note]
    for r in gone:
        c.out(f"  r{r.index}: {r.note}")
    if dep.network is not None:  # a Ray cluster (config `cluster`): r1 is the head
        c.out(f"  network:  {dep.network.uuid} ({dep.network.name}, {dep.network.cidr})")
    for o in fleet_outcomes:
        if o.kind in ("ray-cluster", "ray-serve") and o.note:  # what was already running, started, updated
            c.out(f"  {'ray:' if o.kind == 'ray-cluster' else 'serve:':<9} {o.note}")
    if dep.monitoring.prometheus_config:
        c.out(f"  scrape:   job {dep.monitoring.job} in {dep.monitoring.prometheus_config}")
    if dep.monitoring.file_sd:
        c.out(f"  file_sd:  {dep.monitoring.file_sd}")
    c.out(f"  teardown: orchestrator teardown {dep.name} --yes")
