"""`orchestrator extend NAME 4h`: re-arm the on-host auto-stop timer for a new duration from now.

A three-step plan run through the same Runner and executor as deploy (so `--dry-run` shows every action):
server-running (the cloud says it is started: a powered-off server is an error at once, with what brings it back),
connect (pinned host key) and auto-stop, which with the extend fact replaces the timer and records the new
deadline in the state's auto_stop_at (`status` shows the new time left).

A fleet's extend (NAME, not NAME/rI) goes through every replica: one its timer powered off, or deleted, or unreachable,
is named and the others are still extended; the command then ends with one error naming those not extended (the
exit code of the first one's error), so a script sees that part of the fleet will not stay up.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from orchestrator.errors import ConfigError, Interrupted, OrchestratorError

if TYPE_CHECKING:
    from orchestrator.config import DeploymentConfig
    from orchestrator.context import StepContext
    from orchestrator.progress import ProgressReporter
    from orchestrator.state import Deployment, StateStore

# The cloud first: a server its timer already powered off answers no SSH (connect would wait out its 5 minutes).
STEPS = [
    {"kind": "server-running", "timeout": "1m"},
    {"kind": "connect", "timeout": "5m"},
    {"kind": "auto-stop", "timeout": "1m"},
]


def parse_extension(text: str) -> float:
    from orchestrator.durations import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"duration {text!r} {exc}", "e.g. orchestrator extend NAME 4h") from None
    if seconds < 1:
        raise ConfigError(f"duration {text!r} is too short: the timer needs at least 1s")
    return seconds


def extend(name: str, duration: str, *, dry_run: bool, debug: bool) -> None:
    """Re-arm the timer of deployment ``name``'s server; a fleet's: every replica's, or replica I's (NAME/rI)."""
    from orchestrator.commands.target import check_reachable, split_ref
    from orchestrator.console import Console, guard
    from orchestrator.playbook import Playbook
    from orchestrator.progress import ProgressReporter
    from orchestrator.runner import Runner
    from orchestrator.state import StateStore
    from orchestrator.steps.autostop import EXTEND_FACT
    from orchestrator.transports.base import Executor

    with guard(debug):
        seconds = parse_extension(duration)
    console = Console(verbose=debug or dry_run)
    with guard(debug, console), contextlib.ExitStack() as stack:
        store = StateStore()
        deployment, index = split_ref(name)
        target = _load(name)
        if not dry_run:
            stack.enter_context(store.lock(deployment, "extend"))
            target = _load(name)  # re-read under the lock
        reporter = ProgressReporter(console, dry_run=dry_run, as_json=False)
        book = Playbook.model_validate({"name": "extend", "steps": STEPS})
        if dry_run:
            console.out(
                f"Dry run of `extend` for deployment {name}: nothing will be changed. "
                "Values not known yet appear as <placeholders>."
            )
        left: list[str] = []
        failed: list[tuple[str, OrchestratorError]] = []
        contexts = _contexts(*target, index, None if dry_run else store, reporter)
        for label, ctx in contexts:
            executor: Executor
            if dry_run:
                from orchestrator.transports.recording import RecordingExecutor

                executor = RecordingExecutor()
            else:
                from orchestrator.transports.live import LiveExecutor

                executor = LiveExecutor({}, notify=reporter.info)
            ctx.facts[EXTEND_FACT] = seconds
            if label:
                reporter.info(f"{label}:")
            try:
                if label:  # one replica of a fleet: no IP or no pinned key is its own failure, as load_target's
                    check_reachable(label, ctx.dep, ctx.dep.server)
                outcomes = Runner(executor, reporter).run(book, ctx)
            except OrchestratorError as exc:
                if len(contexts) == 1 or exc.exit_code == Interrupted.exit_code:
                    raise
                reporter.info(f"{label}: not extended: {exc.message}")
                failed.append((label, exc))
                continue
            finally:
                executor.close()
            if dry_run:
                reporter.summary("extend", ctx, outcomes, None)
                continue
            at = ctx.dep.auto_stop_at or 0.0
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(at))
            left.append(f"{label or f'deployment {name}'} powers itself off in {_left(at)} (at {when})")
        if len(left) == 1:
            console.out(f"{left[0]}; extend again or tear down before then")
        elif left:
            console.out("\n".join([*left, "extend again or tear down before then"]))
        if failed:
            raise _not_extended(failed, len(contexts))


def _not_extended(failed: list[tuple[str, OrchestratorError]], total: int) -> OrchestratorError:
    """One error for the replicas a fleet's extend could not re-arm: each named with its reason, the hints kept."""
    first = failed[0][1]
    names = "; ".join(f"{label}: {exc.message}" for label, exc in failed)
    hints = list(dict.fromkeys(exc.hint for _, exc in failed if exc.hint))
    err = OrchestratorError(f"{len(failed)} of {total} replica(s) not extended: {names}", "; ".join(hints) or None)
    err.exit_code = first.exit_code
    return err


def _left(at: float) -> str:
    from orchestrator.durations import format_duration

    return format_duration(max(at - time.time(), 0))


def _load(ref: str) -> tuple[Deployment, DeploymentConfig]:
    """The record and config ``ref`` names. One server, or one replica (NAME/rI): load_target's checks (no IP or no
    pinned key: exit 5 before anything runs). A whole fleet: only the record; each replica is checked in turn."""
    from orchestrator.commands.target import config_of, load_deployment, split_ref, target_of

    name, index = split_ref(ref)
    dep = load_deployment(name)
    if dep.replicas and index is None:
        return dep, config_of(dep)
    target = target_of(dep, ref)
    return target.dep, target.cfg


def _contexts(
    dep: Deployment, cfg: DeploymentConfig, index: int | None, store: StateStore | None, reporter: ProgressReporter
) -> list[tuple[str, StepContext]]:
    """(label, context) per server to extend: the one server (no label), or each replica of a fleet (every one,
    or replica ``index``), each a view whose saves go into the fleet's document (fleet_state.py)."""
    from orchestrator.context import StepContext
    from orchestrator.fleet_state import Fleet, ReplicaContext, label, replica_config

    if not dep.replicas:
        return [("", StepContext(cfg=cfg, dep=dep, store=store, notify=reporter.info))]
    fleet = Fleet(dep, store)
    chosen = [r for r in dep.replicas if index is None or r.index == index]
    return [
        (
            f"{dep.name}/{label(rec.index)}",
            ReplicaContext(
                cfg=replica_config(cfg, rec.index),
                dep=fleet.view(rec),
                store=store,
                notify=reporter.info,
                replica=rec.index,
                fleet=fleet,
                record=rec,
            ),
        )
        for rec in chosen
    ]
