"""Durations in configs and playbooks: "30m", "90s", "1h30m" or a number of seconds."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

if TYPE_CHECKING:
    from pydantic import BeforeValidator

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from "30m" / "1h30m" / "45s" / 12 / 12.5. Raises ValueError with a helpful text."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 30s, 10m or 1h")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return float(text)
        pos, total = 0, 0.0
        for m in _PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos == len(text) and pos > 0:
            return total
    raise ValueError("must be a duration such as 30s, 10m or 1h")


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_limit(seconds: float) -> str:
    """A limit or deadline, as configs write them: "30m", "1h30m", "45s", "2m30s"."""
    total = round(seconds)
    if total < 60:
        return f"{max(total, 0)}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m" + (f"{secs:02d}s" if secs else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h" + (f"{minutes:02d}m" if minutes else "")


if TYPE_CHECKING:
    Duration = Annotated[float, BeforeValidator(parse_duration)]
else:

    def __getattr__(name: str) -> Any:
        """`Duration` (the config's field type) is made on first use: parsing and formatting need no pydantic."""
        if name == "Duration":
            from pydantic import BeforeValidator

            return Annotated[float, BeforeValidator(parse_duration)]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
