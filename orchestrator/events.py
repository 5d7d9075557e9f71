"""NDJSON progress events (`--json` on a real run): one JSON object per stderr line, masked like all output.

Every event has `event` and `ts` (Unix time, seconds); the other fields per event are documented in README.md
("Progress events"). The stdout document is unchanged: the `summary` event carries the same object.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

EVENTS = ("step_started", "step_finished", "action", "output", "waiting", "info", "summary")
MAX_LINE = 2000  # characters of one output line an `output` event carries


def masked(value: object, mask: Callable[[str], str]) -> object:
    """``value`` with ``mask`` applied to every string in it (keys included), before JSON escaping can hide one."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask(str(k)): masked(v, mask) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v, mask) for v in value]
    return value


class EventStream:
    """Writes one event per line through ``write`` (the console's masked stderr)."""

    def __init__(
        self,
        write: Callable[[str], None],
        mask: Callable[[str], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.write = write
        self.mask = mask
        self.clock = clock
        self.fields: dict[str, object] = {}  # put in every event (a fleet's replica reporter: {"replica": I})

    def emit(self, event: str, **fields: object) -> None:
        assert event in EVENTS, event
        doc = {"event": event, "ts": round(self.clock(), 3), **self.fields, **fields}
        line = json.dumps(masked(doc, self.mask), ensure_ascii=False, separators=(", ", ": "))
        self.write(self.mask(line))
