"""Progress output: step-by-step lines on stderr, the dry-run transcript, summaries and the status table.

A real run shows progress one of three ways: plain lines (stderr is not a terminal), a rich live display
(orchestrator/live_display.py, stderr is a terminal), or NDJSON events (orchestrator/events.py, with --json).
Everything shown passes through the console's mask first.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

from orchestrator.actions import Action, Connect, HttpCheck, Local, LockLocal, Pause, Remote
from orchestrator.durations import format_duration

if TYPE_CHECKING:
    from orchestrator.context import StepContext
    from orchestrator.errors import OrchestratorError
    from orchestrator.events import EventStream
    from orchestrator.health import Wait
    from orchestrator.live_display import LiveDisplay
    from orchestrator.runner import StepOutcome

Mode = Literal["dry-run", "plain", "rich", "json"]


class Printer(Protocol):
    verbose: bool
    report: dict[str, object]
    on_document: Callable[[dict[str, object]], None] | None

    def err(self, text: str) -> None: ...
    def out(self, text: str) -> None: ...
    def mask(self, text: str) -> str: ...


def display_mode(dry_run: bool, as_json: bool) -> Mode:
    if dry_run:
        return "dry-run"
    if as_json:
        return "json"
    if sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        return "rich"
    return "plain"


def action_limit(action: Action) -> float | None:
    """The seconds an action may take by itself (already bounded by its step's timeout): shown beside it."""
    if isinstance(action, (Local, Remote)):
        return action.timeout
    if isinstance(action, HttpCheck):
        return action.wait or action.timeout
    if isinstance(action, LockLocal):
        return action.wait
    if isinstance(action, Connect):
        return action.deadline
    if isinstance(action, Pause):
        return action.seconds
    return None


class WaitThrottle:
    """How often a polling check's failed probes are shown: not before it has waited ``first`` seconds, then when
    the reason changes (at most every ``gap`` seconds) or every ``quiet`` seconds. Counted in the check's own
    elapsed time; a new check (another URL, or elapsed back at the start) starts afresh."""

    def __init__(self, first: float = 5.0, gap: float = 5.0, quiet: float = 30.0) -> None:
        self.first, self.gap, self.quiet = first, gap, quiet
        self.url: str | None = None
        self.shown_at: float | None = None
        self.reason: str | None = None
        self.last_elapsed = 0.0

    def due(self, wait: Wait) -> bool:
        if wait.url != self.url or wait.elapsed < self.last_elapsed:
            self.url, self.shown_at, self.reason = wait.url, None, None
        self.last_elapsed = wait.elapsed
        if self.shown_at is None:
            if wait.elapsed < self.first:
                return False
        else:
            since = wait.elapsed - self.shown_at
            if since < self.gap or (wait.reason == self.reason and since < self.quiet):
                return False
        self.shown_at, self.reason = wait.elapsed, wait.reason
        return True


class ProgressReporter:
    """Real runs: progress on stderr, summary on stdout. Dry-run: the transcript on stdout.

    Also the live executor's Feed: remote output lines and health-probe waits arrive here while an action runs.
    """

    def __init__(
        self,
        console: Printer,
        *,
        dry_run: bool,
        as_json: bool,
        mode: Mode | None = None,
        display: LiveDisplay | None = None,
    ) -> None:
        self.c = console
        self.dry_run = dry_run
        self.as_json = as_json
        self.mode: Mode = mode or display_mode(dry_run, as_json)
        self.counter = 0
        self.transcript: list[dict[str, object]] = []
        self.events: EventStream | None = None
        self.display: LiveDisplay | None = display
        self.step_index = 0
        self.plain_waits = WaitThrottle()
        self.json_waits = WaitThrottle(first=0.0, gap=0.0, quiet=5.0)
        if self.mode == "json":
            from orchestrator.events import EventStream

            events = self.events = EventStream(console.err, console.mask)
            console.on_document = lambda doc: events.emit("summary", document=doc)
        if self.mode == "rich":
            atexit.register(self.close)

    def _line(self, text: str) -> None:
        if self.dry_run and not self.as_json:
            self.c.out(text)
        elif self.mode == "rich":
            self._live().log(self.c.mask(text))
        elif self.mode == "plain":
            self.c.err(text)

    def _live(self) -> LiveDisplay:
        if self.display is None:
            from orchestrator.live_display import LiveDisplay

            self.display = LiveDisplay()
        return self.display

    def close(self) -> None:
        """Stop the live display (it restarts at the next step); safe to call twice."""
        if self.display is not None:
            self.display.stop()

    def step_started(self, index: int, total: int, kind: str, timeout: float | None = None) -> None:
        self.transcript.append({"step": kind, "actions": []})
        self.step_index = index
        if self.events is not None:
            self.events.emit("step_started", index=index, total=total, kind=kind, timeout=timeout)
        elif self.mode == "rich":
            live = self._live()
            live.start()
            live.step_started(f"[{index}/{total}] {kind}", timeout)
        else:
            self._line(f"[{index}/{total}] {kind}")

    def action(self, action: Action) -> None:
        self.counter += 1
        actions = self.transcript[-1]["actions"]
        assert isinstance(actions, list)
        actions.append(action.describe())
        if self.events is not None:
            self.events.emit(
                "action",
                step=self.step_index,
                n=self.counter,
                description=action.describe(),
                timeout=action_limit(action),
            )
            return
        if self.mode == "rich":
            self._live().action(self.c.mask(action.describe()), action_limit(action))
        if self.dry_run or self.c.verbose:
            self._line(f"    {self.counter:>3}. {action.describe()}")

    def output(self, stream: str, line: str) -> None:
        """A remote output line as it arrives (the live executor's Feed)."""
        text = self.c.mask(line)
        if self.events is not None:
            self.events.emit("output", step=self.step_index, stream=stream, line=text[:2000])
        elif self.mode == "rich":
            self._live().output(text)
        elif self.mode == "plain" and self.c.verbose:
            self.c.err(f"      | {text}")

    def waiting(self, wait: Wait) -> None:
        """A health check's failed probe (every one): shown at once on a terminal, throttled elsewhere."""
        if self.events is not None:
            if self.json_waits.due(wait):
                self.events.emit(
                    "waiting",
                    step=self.step_index,
                    url=wait.url,
                    reason=wait.reason,
                    elapsed=round(wait.elapsed, 1),
                    deadline=round(wait.deadline, 1),
                )
        elif self.mode == "rich":
            self._live().waiting(wait)
        elif self.mode == "plain" and self.plain_waits.due(wait):
            self._line(f"      {wait.text()}")

    def step_finished(self, index: int, total: int, outcome: StepOutcome) -> None:
        if self.dry_run:
            if outcome.note:
                self._line(f"        -> {outcome.note}")
            return
        if self.events is not None:
            self.events.emit(
                "step_finished",
                index=index,
                total=total,
                kind=outcome.kind,
                status=outcome.status,
                seconds=round(outcome.seconds, 3),
                note=outcome.note,
            )
            return
        mark = {"ok": "ok", "failed": "FAILED", "interrupted": "INTERRUPTED"}.get(outcome.status, outcome.status)
        note = f"  {outcome.note}" if outcome.note else ""
        text = f"[{index}/{total}] {outcome.kind}: {mark} ({format_duration(outcome.seconds)}){note}"
        if self.mode == "rich":
            live = self._live()
            live.step_finished(self.c.mask(text))
            if index == total:
                live.stop()  # between playbooks and before the summary, the terminal is the console's again
            return
        self._line(text)

    def info(self, message: str) -> None:
        if self.events is not None:
            self.events.emit("info", step=self.step_index, message=message)
            return
        self._line(f"      {message}")

    def summary(
        self, command: str, ctx: StepContext, outcomes: list[StepOutcome], failure: OrchestratorError | None
    ) -> None:
        dep = ctx.dep
        self.close()
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
            if self.events is not None:
                self.events.emit("summary", document=doc)
            return
        if self.dry_run:
            self.c.out(f"Dry run complete: {self.counter} actions in {len(outcomes)} steps; nothing was changed.")
            return
        if failure is not None:
            return
        if command == "teardown":
            fate = "the server was already gone" if ctx.found_gone else "server deleted and confirmed gone"
            self.c.out(f"deployment {ctx.cfg.name} removed: {fate}, state forgotten")
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
