"""The step runner: drives each playbook step's generator, sends its actions to the executor, records outcomes."""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.actions import Action, HttpCheck, Local, OnNode, Remote, Result
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import (
    CommandFailed,
    EngineError,
    GpuVerificationError,
    HostPrepError,
    Interrupted,
    MonitoringError,
    OrchestratorError,
    ProviderError,
    SSHError,
    TeardownIncomplete,
)
from orchestrator.playbook import Playbook, PlaybookStep
from orchestrator.retry import RECONNECTS_PER_STEP, is_transient, reruns_after_reconnect
from orchestrator.state import StepRecord
from orchestrator.steps import STEPS
from orchestrator.transports.base import Executor

CATEGORY: dict[str, type[OrchestratorError]] = {
    "provision": ProviderError,
    "connect": SSHError,
    "prepare-host": HostPrepError,
    "verify-gpu": GpuVerificationError,
    "ml-stack": HostPrepError,
    "install-stack": HostPrepError,
    "start-engine": EngineError,
    "health": EngineError,
    "monitoring": MonitoringError,
    "unmonitor": MonitoringError,
    "stop-engine": TeardownIncomplete,
    "destroy-server": TeardownIncomplete,
}


@dataclass
class StepOutcome:
    """How one step ended: its status, how long it took, its note and the actions it performed."""

    kind: str
    status: str  # ok | failed | interrupted
    seconds: float
    note: str = ""
    actions: list[str] = field(default_factory=list)


class Reporter(Protocol):
    """Receives progress; the CLI prints it, tests collect it."""

    def step_started(self, index: int, total: int, kind: str, timeout: float | None = None) -> None: ...
    def action(self, action: Action) -> None: ...
    def step_finished(self, index: int, total: int, outcome: StepOutcome) -> None: ...
    def info(self, message: str) -> None: ...


def _explain(exc: OrchestratorError) -> None:
    """Attach the known-failure explanation (engines.md §6) when the output matches one."""
    from orchestrator.failures import explain, match_failure

    text = "\n".join(x for x in (exc.details, exc.message, getattr(exc, "stderr", None)) if x)
    known = match_failure(text)
    if known is not None and known.code != "F16":
        exc.hint = explain(known) + (f"\n{exc.hint}" if exc.hint else "")


def _mapped(kind: str, exc: CommandFailed) -> OrchestratorError:
    cls = CATEGORY.get(kind, OrchestratorError)
    out = (exc.stdout + "\n" + exc.stderr).strip()
    return cls(f"{kind}: {exc.message}", "see the command output below", details=out[-3000:] or None)


def _categorised(kind: str, exc: OrchestratorError) -> OrchestratorError:
    """A plain OrchestratorError (exit 1) out of a step, e.g. a local lock that cannot be taken, takes the step's
    category, so its exit code says where it failed (monitoring: 9); a typed error is kept as it is."""
    cls = CATEGORY.get(kind)
    if cls is None or type(exc) is not OrchestratorError:
        return exc
    return cls(exc.message, exc.hint, details=exc.details)


class Runner:
    def __init__(self, executor: Executor, reporter: Reporter) -> None:
        self.executor = executor
        self.reporter = reporter
        self.outcomes: list[StepOutcome] = []

    def run(self, playbook: Playbook, ctx: StepContext) -> list[StepOutcome]:
        total = len(playbook.steps)
        continued: list[str] = []  # "kind: why" of continue_on_error steps that failed
        ctx.facts["incomplete"] = continued
        last = ""  # the last step finished: an interrupt between steps (its result saved, the next not begun)
        try:
            for index, step in enumerate(playbook.steps, start=1):
                self.reporter.step_started(index, total, step.kind, step.timeout)
                started = time.monotonic()
                outcome = StepOutcome(step.kind, "ok", 0.0)
                try:
                    try:
                        outcome.note = self._run_step(step, ctx, outcome) or ""
                    except OrchestratorError:
                        raise
                    except Exception as exc:
                        if not step.continue_on_error:
                            raise
                        # Not even a bug in local clean-up may stop the steps that delete what bills.
                        raise OrchestratorError(f"{step.kind}: unexpected {type(exc).__name__}: {exc}") from exc
                except KeyboardInterrupt:
                    outcome.status = "interrupted"
                    self._finish(ctx, index, total, outcome, started)
                    raise Interrupted(f"interrupted during step {step.kind}") from None
                except OrchestratorError as exc:
                    outcome.status, outcome.note = "failed", exc.message
                    _explain(exc)
                    ctx.dep.last_error = f"{step.kind}: {exc.message}"
                    self._finish(ctx, index, total, outcome, started)
                    if step.continue_on_error and not isinstance(exc, Interrupted):
                        continued.append(f"{step.kind}: {exc.message}")
                        self.reporter.info(f"{step.kind} failed: {exc.message} (going on: {_rest(playbook, index)})")
                        continue
                    if continued:
                        also = [f"also failed: {c}" for c in continued]
                        exc.hint = "\n".join(([exc.hint] if exc.hint else []) + also)
                    raise
                self._finish(ctx, index, total, outcome, started)
                last = step.kind
        except KeyboardInterrupt:
            where = f"after step {last}" if last else "before the first step"
            raise Interrupted(f"interrupted {where}") from None
        if continued:
            done = [o.note for o in self.outcomes[-total:] if o.status == "ok" and o.note and o.kind != "forget"]
            raise TeardownIncomplete(
                f"{playbook.name} incomplete: {'; '.join(continued)}",
                f"fix that, then run `orchestrator {playbook.name} {ctx.cfg.name}` again to finish",
                details="done: " + "; ".join(done) if done else None,
            )
        return self.outcomes

    def _finish(self, ctx: StepContext, index: int, total: int, outcome: StepOutcome, started: float) -> None:
        outcome.seconds = time.monotonic() - started
        self.outcomes.append(outcome)
        if outcome.kind != "forget":
            ctx.dep.steps[outcome.kind] = StepRecord(
                status=outcome.status,
                finished_at=time.time(),
                seconds=round(outcome.seconds, 3),
                note=outcome.note,
            )
            ctx.save()
        self.reporter.step_finished(index, total, outcome)

    def _run_step(self, step: PlaybookStep, ctx: StepContext, outcome: StepOutcome) -> str | None:
        attempts = step.retries + 1
        deadline = time.monotonic() + step.timeout if step.timeout else None
        attempt, reconnects = 1, RECONNECTS_PER_STEP
        while True:
            try:
                return self._drive(STEPS[step.kind](ctx), step.kind, deadline, outcome)
            except CommandFailed as exc:
                err: OrchestratorError = _mapped(step.kind, exc)
                if attempt == attempts:
                    raise err from exc
            except OrchestratorError as exc:
                if reruns_after_reconnect(exc) and reconnects > 0 and not self.executor.dry_run:
                    # The connection broke, not the step: reconnect (the executor does, at the step's first
                    # remote action) and re-run it; its probes re-check what is already done.
                    reconnects -= 1
                    ctx.notify(f"{step.kind}: {exc.message}; re-running the step on a new connection")
                    continue
                if attempt == attempts or not is_transient(exc) or self.executor.dry_run:
                    typed = _categorised(step.kind, exc)
                    if typed is exc:
                        raise
                    raise typed from exc
                err = exc
            ctx.notify(f"{step.kind}: {err.message} (transient; attempt {attempt + 1} of {attempts})")
            time.sleep(min(2.0 * attempt, 10.0))
            attempt += 1

    def _drive(self, gen: StepGen, kind: str, deadline: float | None, outcome: StepOutcome) -> str | None:
        try:
            action = next(gen)
            while True:
                action = _clamp(action, deadline)
                self.reporter.action(action)
                outcome.actions.append(action.describe())
                try:
                    result: Result = self.executor.execute(action)
                except OrchestratorError as exc:
                    # Thrown into the step at its `yield`, so a step can record or tolerate the failure.
                    action = gen.throw(exc)
                    continue
                action = gen.send(result)
        except StopIteration as stop:
            return stop.value if isinstance(stop.value, str) else None
        finally:
            gen.close()


def _rest(playbook: Playbook, index: int) -> str:
    rest = [s.kind for s in playbook.steps[index:]]
    return ", ".join(rest) if rest else "nothing left to run"


def _clamp(action: Action, deadline: float | None) -> Action:
    """Bound an action's own timeout by what is left of the step's timeout."""
    if deadline is None:
        return action
    if isinstance(action, OnNode):
        return dataclasses.replace(action, action=_clamp(action.action, deadline))
    left = max(deadline - time.monotonic(), 1.0)
    if isinstance(action, Local) and action.timeout > left:
        return dataclasses.replace(action, timeout=left)
    if isinstance(action, Remote) and action.timeout > left:
        clamped = copy.copy(action)  # the step's own limit is the outer one: no re-widening in __post_init__
        object.__setattr__(clamped, "timeout", left)
        return clamped
    if isinstance(action, HttpCheck) and action.wait and action.wait > left:
        return dataclasses.replace(action, wait=left)
    return action
