"""Shared tally of fault-injection scenarios: (name, untracked servers found), printed at the end of the run."""

from __future__ import annotations

SCENARIOS: list[tuple[str, int]] = []
