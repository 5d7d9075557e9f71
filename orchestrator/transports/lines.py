"""Output cut into lines as it arrives, for a live display: the SSH transport's remote commands, the local one's
upctl progress log. A carriage return ends a line too (progress bars redraw with it); blank lines are dropped."""

from __future__ import annotations

import re
from collections.abc import Callable

_LINE_END = re.compile(rb"[\r\n]")
OnLine = Callable[[str, str], None]  # (stream, line): "stdout" or "stderr", one line without its end


class LineSplitter:
    """Cuts a byte stream into lines for an OnLine callback as the bytes arrive (\n or \r ends a line)."""

    MAX = 4096  # a longer run of bytes without a line end is passed on in pieces

    def __init__(self, stream: str, on_line: OnLine | None) -> None:
        self.stream = stream
        self.on_line = on_line
        self.pending = bytearray()

    def feed(self, chunk: bytes) -> None:
        if self.on_line is None:
            return
        self.pending += chunk
        *lines, rest = _LINE_END.split(bytes(self.pending))
        for line in lines:
            self._emit(line)
        self.pending = bytearray(rest)
        if len(self.pending) >= self.MAX:
            self.flush()

    def flush(self) -> None:
        if self.on_line is not None and self.pending:
            self._emit(bytes(self.pending))
        self.pending.clear()

    def _emit(self, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip()
        if text and self.on_line is not None:
            self.on_line(self.stream, text)
