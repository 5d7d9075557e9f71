"""auto-stop: an on-host timer that powers the server off when provider.ttl runs out, laptop or not."""

from __future__ import annotations

import shlex
import time

from orchestrator.actions import Remote
from orchestrator.context import StepContext, StepGen
from orchestrator.durations import format_duration
from orchestrator.errors import HostPrepError
from orchestrator.hostprep import sudo

EXTEND_FACT = "auto_stop_extend"  # seconds from now: `orchestrator extend NAME 4h` re-arms the timer with it


def auto_stop(ctx: StepContext) -> StepGen:
    extend = ctx.facts.get(EXTEND_FACT)
    if isinstance(extend, (int, float)):
        # `extend`: a new deadline from now, whatever provider.ttl said (or without one).
        deadline = time.time() + extend
        note = yield from rearm(ctx, deadline, "orchestrator extend")
        return note or f"would power the server off in {format_duration(max(int(extend), 1))}"
    ttl = ctx.cfg.provider.ttl
    if not ttl:
        return "no provider.ttl: the server runs until teardown"
    # The deadline is fixed at the first deploy; re-runs re-arm the timer for what is left of it. A deploy
    # after the deadline (the server was powered off and has just been started again) gets a fresh ttl.
    deadline = ctx.dep.auto_stop_at or 0.0
    if deadline <= time.time():
        deadline = time.time() + ttl
    note = yield from rearm(ctx, deadline, "provider.ttl")
    return note or f"would power the server off after {format_duration(ttl)}"


def rearm(ctx: StepContext, deadline: float, why: str) -> StepGen:
    """Replace the on-host timer (the old one is killed) with one that powers off at ``deadline``; record it.

    Returns the note for the step, or None in a dry run (the command was only recorded)."""
    left = max(round(deadline - time.time()), 1)
    rd = shlex.quote(f".orchestrator/{ctx.cfg.name}")
    poweroff = sudo(["shutdown", "-h", "now"], ctx.cfg.ssh.user)
    # A stopped UpCloud GPU server is not billed for its plan; `shutdown -h` from inside stops it.
    r = yield Remote(
        f'mkdir -p {rd} && chmod 700 {rd}; old=$(cat {rd}/ttl.pid 2>/dev/null) && kill "$old" 2>/dev/null; '
        f"setsid nohup sh -c {shlex.quote(f'sleep {left}; {poweroff}')} > {rd}/ttl.log 2>&1 < /dev/null "
        f"& echo $! > {rd}/ttl.pid; cat {rd}/ttl.pid",
        f"power off in {format_duration(left)} ({why})",
    )
    if not r.known:
        return None
    if r.rc != 0:
        raise HostPrepError(
            f"could not arm the auto-stop timer (exit {r.rc})",
            "check the host; the server will run until `orchestrator teardown`",
            details=(r.stdout + r.stderr)[-2000:],
        )
    ctx.dep.auto_stop_at = deadline
    ctx.save()
    return (
        f"server powers itself off in {format_duration(left)} (at {time.strftime('%H:%M', time.localtime(deadline))})"
    )
