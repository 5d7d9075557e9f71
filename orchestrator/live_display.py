"""The terminal's live progress (rich): the running step with elapsed time and its limit, the current action with
its own limit, what a health check is waiting for, and the last lines of remote output as they arrive.

Finished steps and notes are printed above the live region and stay; the region itself vanishes when it stops.
Only the progress reporter uses this, and only when stderr is a terminal: rich is imported here, nowhere else.
Everything it is given is already masked.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.durations import format_duration, format_limit

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from orchestrator.health import Wait

_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")


def clean(line: str) -> str:
    """A remote line without terminal control sequences (colours, cursor moves), tabs as spaces."""
    return _CONTROL.sub("", line.replace("\t", "    "))


def elapsed_of(elapsed: float, limit: float | None) -> str:
    """ "12.0s of 5m", or "12.0s" without a limit."""
    return format_duration(elapsed) + (f" of {format_limit(limit)}" if limit else "")


@dataclass
class _Step:
    title: str  # "[11/12] health"
    limit: float | None
    started: float


@dataclass
class _Action:
    text: str
    limit: float | None
    started: float


@dataclass
class _Waiting:
    wait: Wait
    seen: float  # when the probe was reported: the elapsed time keeps counting between probes


class LiveDisplay:
    TAIL = 6  # remote output lines shown
    OUTPUT_REFRESH = 0.1  # seconds: output lines redraw at most this often (waits and steps at once)

    def __init__(self, console: Console | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if console is None:
            from rich.console import Console

            console = Console(stderr=True, highlight=False)
        self.console = console
        self.clock = clock
        self._lock = threading.Lock()  # rich refreshes from its own thread
        self._live: Live | None = None
        self._step: _Step | None = None
        self._action: _Action | None = None
        self._waiting: _Waiting | None = None
        self.tail: deque[str] = deque(maxlen=self.TAIL)
        self._refreshed = 0.0

    # ------------------------------------------------------------------ lifecycle

    @property
    def active(self) -> bool:
        return self._live is not None

    def start(self) -> None:
        if self._live is not None:
            return
        from rich.live import Live

        # stdout stays untouched (it may be a pipe: the summary goes there); stray stderr prints go above the region
        self._live = Live(self, console=self.console, refresh_per_second=4, transient=True, redirect_stdout=False)
        self._live.start()

    def stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    # ------------------------------------------------------------------ what the reporter tells it

    def step_started(self, title: str, limit: float | None) -> None:
        with self._lock:
            self._step = _Step(title, limit, self.clock())
            self._action, self._waiting = None, None
            self.tail.clear()
        self.refresh()

    def action(self, text: str, limit: float | None) -> None:
        with self._lock:
            self._action = _Action(text, limit, self.clock())
            self._waiting = None
        self.refresh()

    def output(self, line: str) -> None:
        text = clean(line).rstrip()
        if not text:
            return
        with self._lock:
            self.tail.append(text)
        self.refresh(at_most_every=self.OUTPUT_REFRESH)  # pip and apt print hundreds of lines a second

    def waiting(self, wait: Wait) -> None:
        with self._lock:
            self._waiting = _Waiting(wait, self.clock())
        self.refresh()

    def step_finished(self, line: str) -> None:
        self.refresh()  # the step's last state once (its last output lines), then its line that stays
        with self._lock:
            self._step, self._action, self._waiting = None, None, None
            self.tail.clear()
        self.log(line)

    def log(self, line: str) -> None:
        """A line that stays (printed above the live region)."""
        from rich.text import Text

        self.console.print(Text(clean(line)), soft_wrap=True)

    def refresh(self, at_most_every: float = 0.0) -> None:
        if self._live is None:
            return
        now = time.monotonic()
        if at_most_every and now - self._refreshed < at_most_every:
            return  # the live display's own refresh (4 per second) shows it soon
        self._refreshed = now
        self._live.refresh()

    # ------------------------------------------------------------------ rendering

    def lines(self) -> list[tuple[str, str]]:
        """What the region shows now, as (style, text) lines."""
        now = self.clock()
        with self._lock:
            step, action, waiting, tail = self._step, self._action, self._waiting, list(self.tail)
        if step is None:
            return []
        out = [("bold", f"{step.title}  {elapsed_of(now - step.started, step.limit)}")]
        if action is not None:
            out.append(("", f"  {action.text}  ({elapsed_of(now - action.started, action.limit)})"))
        if waiting is not None:
            w = waiting.wait
            since = w.elapsed + max(0.0, now - waiting.seen)
            out.append(("yellow", f"  waiting: {w.reason}, {elapsed_of(since, w.deadline)}"))
        out += [("dim", f"  │ {t}") for t in tail]
        return out

    def __rich__(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        return Group(*(Text(t, style=s, no_wrap=True, overflow="ellipsis") for s, t in self.lines()))
