"""`orchestrator extend NAME 4h`: re-arm the on-host auto-stop timer for a new duration from now.

A two-step plan run through the same Runner and executor as deploy (so `--dry-run` shows every action):
connect (pinned host key) and auto-stop, which with the extend fact replaces the timer and records the new
deadline in the state's auto_stop_at (`status` shows the new time left).
"""

from __future__ import annotations

import contextlib
import time

from orchestrator.errors import ConfigError

STEPS = [{"kind": "connect", "timeout": "5m"}, {"kind": "auto-stop", "timeout": "1m"}]


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
    from orchestrator.commands.target import load_target
    from orchestrator.console import Console, guard
    from orchestrator.context import StepContext
    from orchestrator.durations import format_duration
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
        target = load_target(name)
        if not dry_run:
            stack.enter_context(store.lock(name, "extend"))
            target = load_target(name)  # re-read under the lock
        reporter = ProgressReporter(console, dry_run=dry_run, as_json=False)
        executor: Executor
        if dry_run:
            from orchestrator.transports.recording import RecordingExecutor

            executor = RecordingExecutor()
            console.out(
                f"Dry run of `extend` for deployment {name}: nothing will be changed. "
                "Values not known yet appear as <placeholders>."
            )
        else:
            from orchestrator.transports.live import LiveExecutor

            executor = LiveExecutor({}, notify=reporter.info)
        ctx = StepContext(
            cfg=target.cfg, dep=target.dep, store=None if dry_run else store, notify=reporter.info
        )
        ctx.facts[EXTEND_FACT] = seconds
        book = Playbook.model_validate({"name": "extend", "steps": STEPS})
        try:
            outcomes = Runner(executor, reporter).run(book, ctx)
        finally:
            executor.close()
        if dry_run:
            reporter.summary("extend", ctx, outcomes, None)
            return
        at = ctx.dep.auto_stop_at or 0.0
        console.out(
            f"deployment {name} powers itself off in {format_duration(max(at - time.time(), 0))} "
            f"(at {time.strftime('%Y-%m-%d %H:%M', time.localtime(at))}); extend again or tear down before then"
        )
