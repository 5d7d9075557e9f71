"""Progress output: step-by-step lines on stderr, the dry-run transcript, summaries and the status table."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Protocol

from orchestrator.actions import Action
from orchestrator.durations import format_duration

if TYPE_CHECKING:
    from orchestrator.context import StepContext
    from orchestrator.errors import OrchestratorError
    from orchestrator.runner import StepOutcome
    from orchestrator.state import Deployment


class Printer(Protocol):
    verbose: bool
    report: dict[str, object]

    def err(self, text: str) -> None: ...
    def out(self, text: str) -> None: ...


class ProgressReporter:
    """Real runs: progress on stderr, summary on stdout. Dry-run: the transcript on stdout."""

    def __init__(self, console: Printer, *, dry_run: bool, as_json: bool) -> None:
        self.c = console
        self.dry_run = dry_run
        self.as_json = as_json
        self.counter = 0
        self.transcript: list[dict[str, object]] = []

    def _line(self, text: str) -> None:
        if self.dry_run and not self.as_json:
            self.c.out(text)
        elif not self.dry_run:
            self.c.err(text)

    def step_started(self, index: int, total: int, kind: str) -> None:
        self.transcript.append({"step": kind, "actions": []})
        self._line(f"[{index}/{total}] {kind}")

    def action(self, action: Action) -> None:
        self.counter += 1
        actions = self.transcript[-1]["actions"]
        assert isinstance(actions, list)
        actions.append(action.describe())
        if self.dry_run or self.c.verbose:
            self._line(f"    {self.counter:>3}. {action.describe()}")

    def step_finished(self, index: int, total: int, outcome: StepOutcome) -> None:
        if self.dry_run:
            if outcome.note:
                self._line(f"        -> {outcome.note}")
            return
        mark = {"ok": "ok", "failed": "FAILED", "interrupted": "INTERRUPTED"}.get(outcome.status, outcome.status)
        note = f"  {outcome.note}" if outcome.note else ""
        self._line(f"[{index}/{total}] {outcome.kind}: {mark} ({format_duration(outcome.seconds)}){note}")

    def info(self, message: str) -> None:
        self._line(f"      {message}")

    def summary(
        self, command: str, ctx: StepContext, outcomes: list[StepOutcome], failure: OrchestratorError | None
    ) -> None:
        dep = ctx.dep
        if self.as_json:
            doc: dict[str, object] = {
                "command": command,
                "deployment": ctx.cfg.name,
                "dry_run": self.dry_run,
                "ok": failure is None,
                "steps": [
                    {
                        "kind": o.kind,
                        "status": o.status,
                        "seconds": round(o.seconds, 3),
                        "note": o.note,
                        "actions": o.actions,
                    }
                    for o in outcomes
                ],
            }
            if not self.dry_run and command == "teardown" and ctx.cfg.provider.price_per_hour is not None:
                doc["cost"] = lifetime_cost_doc(ctx)
            if not self.dry_run:
                doc["server"] = dep.server.model_dump(mode="json") if dep.server else None
                doc["endpoint"] = dep.engine.endpoint if dep.engine else None
                doc["metrics_url"] = dep.engine.metrics_url if dep.engine else None
                doc["prometheus_config"] = dep.monitoring.prometheus_config
            if failure is not None:
                # The error boundary (console.py) prints it, with the error and the exit code it exits with.
                self.c.report = doc
                return
            self.c.out(json.dumps(doc, indent=2))
            return
        if self.dry_run:
            self.c.out(f"Dry run complete: {self.counter} actions in {len(outcomes)} steps; nothing was changed.")
            return
        if failure is not None:
            return
        if command == "teardown":
            self.c.out(f"deployment {ctx.cfg.name} removed: server deleted and confirmed gone, state forgotten")
            if ctx.cfg.provider.price_per_hour is not None:
                self.c.out(f"  cost:     {lifetime_cost_text(ctx)}")
            return
        srv, eng = dep.server, dep.engine
        self.c.out(f"deployment {ctx.cfg.name} is serving")
        if srv:
            self.c.out(f"  server:   {srv.uuid} ({srv.plan}, {srv.zone}) at {srv.ip}")
        if eng:
            self.c.out(f"  endpoint: {eng.endpoint}  (model {eng.served_name})")
            self.c.out(f"  metrics:  {eng.metrics_url}")
        if dep.monitoring.prometheus_config:
            self.c.out(f"  scrape:   job {dep.monitoring.job} in {dep.monitoring.prometheus_config}")
        if dep.monitoring.file_sd:
            self.c.out(f"  file_sd:  {dep.monitoring.file_sd}")
        self.c.out(f"  teardown: orchestrator teardown {ctx.cfg.name} --yes")


def lifetime_cost_doc(ctx: StepContext) -> dict[str, object]:
    """The deployment's whole lifetime, from created_at to now, at provider.price_per_hour per started hour."""
    from orchestrator.cost import billed_hours, cost_so_far

    price, now = ctx.cfg.provider.price_per_hour or 0.0, time.time()
    return {
        "price_per_hour": price,
        "currency": ctx.cfg.provider.currency,
        "lifetime_s": round(now - ctx.dep.created_at, 1),
        "billed_hours": billed_hours(now - ctx.dep.created_at),
        "total": round(cost_so_far(price, ctx.dep.created_at, now), 4),
    }


def lifetime_cost_text(ctx: StepContext) -> str:
    d = lifetime_cost_doc(ctx)
    lifetime = float(d["lifetime_s"])  # type: ignore[arg-type]
    return (
        f"≈ {d['total']:.2f} {d['currency']} for {format_duration(lifetime)} "
        f"({d['billed_hours']} started hour(s) at {d['price_per_hour']} {d['currency']} per hour)"
    )


def auto_stop_text(at: float | None, now: float) -> str:
    if at is None:
        return "-"
    if at <= now:
        return f"due {format_duration(now - at)} ago"
    return f"in {format_duration(at - now)}"


def cost_text(d: Deployment, now: float) -> str:
    """"1.92 EUR/h, 3.84 so far" from the config snapshot's provider.price_per_hour; "-" without a price."""
    from orchestrator.cost import cost_so_far, price_of

    price, currency = price_of(d.config)
    if price is None:
        return "-"
    if d.server is None:
        return f"{price:.2f} {currency}/h"
    return f"{price:.2f} {currency}/h, {cost_so_far(price, d.created_at, now):.2f} so far"


def status_rows(deps: list[Deployment]) -> list[str]:
    header = ("NAME", "STATUS", "SERVER", "IP", "PLAN", "ENGINE", "ENDPOINT", "HEALTH", "AUTO-STOP", "COST")
    rows = [header]
    now = time.time()
    for d in deps:
        srv, eng, h = d.server, d.engine, d.health
        health = "-"
        if h is not None:
            health = f"{'ok' if h.ok else 'FAILED'} {format_duration(now - h.checked_at)} ago"
        rows.append(
            (
                d.name,
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
