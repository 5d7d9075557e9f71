"""Output of the fake upctl: Go-style JSON, YAML, human tables and the non-TTY stderr progress log."""

from __future__ import annotations

import json
import sys
import time

TYPE_CHECKING = False  # typing is not imported at run time: the fake upctl starts once per call
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, TextIO

LINE_WIDTH = 100
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json(value: Any) -> str:
    """`json.MarshalIndent(v, "", "  ")` plus newline: insertion order kept, `<>&` escaped, UTF-8 kept."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)  # these characters only ever occur inside JSON strings
    return text + "\n"


# True when mockcloud/bin/upctl started python without `site` (-S, a faster start): site-packages (PyYAML) then
# join sys.path the first time they are needed, as `site` would have put them there.
SITE_DEFERRED = False


def import_yaml() -> ModuleType:
    """`import yaml` from where a normal start would find it (ImportError when it is not installed)."""
    global SITE_DEFERRED
    try:
        import yaml
    except ImportError:
        if not SITE_DEFERRED:
            raise
        SITE_DEFERRED = False
        import site

        site.main()
        import yaml
    return yaml


def go_yaml(value: Any) -> str:
    """go-yaml v3 style (approximate): keys sorted, four-space indentation."""
    try:
        yaml = import_yaml()
    except ImportError:  # pragma: no cover - the venv has PyYAML; plain python3 may not
        return go_json(value)
    dumped: str = yaml.safe_dump(
        value, sort_keys=True, indent=4, default_flow_style=False, allow_unicode=True, width=1000
    )
    return dumped


def go_quote(text: str) -> str:
    """Go's `%q` for the ASCII strings used here."""
    return json.dumps(text, ensure_ascii=False)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A go-pretty-like plain table (header row, dashed rule, rows)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]

    def line(cells: list[str]) -> str:
        return " " + "   ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=False)).rstrip()

    rule = " " + "   ".join("─" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)]) + "\n"


def details(rows: list[tuple[str, str]], title: str = "") -> str:
    """A detail block: `  Title:  value` lines under an optional section title."""
    width = max((len(k) for k, _ in rows), default=0)
    head = [f"  {title}"] if title else []
    body = [f"    {k.ljust(width)} {v}" if title else f"  {k.ljust(width)} {v}" for k, v in rows]
    return "\n".join(head + body) + "\n"


class _Message:
    __slots__ = ("text", "started_at", "finished", "printed")

    def __init__(self, text: str, started_at: float) -> None:
        self.text = text
        self.started_at = started_at
        self.finished = False
        self.printed: set[str] = set()


class Progress:
    """The `progress` module in non-TTY mode: a line per started text, a line per finished message."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._messages: dict[str, _Message] = {}

    def _line(self, indicator: str, text: str, started_at: float, detail: str = "") -> None:
        elapsed_s = time.monotonic() - started_at
        elapsed = "" if elapsed_s < 1 else (" > 999 s" if elapsed_s >= 999 else f" {int(elapsed_s):3d} s")
        room = LINE_WIDTH - 2 - len(elapsed)
        text = " ".join(text.split())
        shown = text[: room - 1] + "…" if len(text) > room else text.ljust(room)
        out = f"{indicator} {shown}{elapsed}\n"
        if detail:
            import textwrap

            wrapped = textwrap.wrap(detail, LINE_WIDTH - 2, break_long_words=True) or [detail]
            out += "".join(f"  {part}\n" for part in wrapped)
        self.stream.write(out)
        self.stream.flush()

    def started(self, key: str) -> None:
        if key not in self._messages:
            self._messages[key] = _Message(key, time.monotonic())
        self.update(key, key)

    def update(self, key: str, text: str) -> None:
        msg = self._messages.get(key)
        if msg is None or msg.finished:
            return
        msg.text = text
        if text not in msg.printed:
            msg.printed.add(text)
            self._line(">", text, msg.started_at)

    def _finish(self, key: str, indicator: str, text: str | None, detail: str) -> None:
        msg = self._messages.get(key)
        if msg is None:
            msg = self._messages[key] = _Message(text or key, time.monotonic())
        if msg.finished:
            return
        msg.finished = True
        self._line(indicator, text or msg.text, msg.started_at, detail)

    def success(self, key: str) -> None:
        self._finish(key, "✓", key, "")

    def error(self, key: str, message: str) -> None:
        self._finish(key, "✗", None, f"Error: {message}")

    def warning(self, key: str, message: str) -> None:
        self._finish(key, "!", key, f"Error: {message}")

    def command_failed(self, argument: str, message: str) -> None:
        label = f"Command execution failed for {argument}" if argument else "Command execution failed"
        self._line("✗", label, time.monotonic(), f"Error: {message}")

    def stop(self) -> None:
        for msg in self._messages.values():
            if not msg.finished:
                msg.finished = True
                self._line("?", msg.text, msg.started_at)
