"""Recording executor: dry-run. Records each action's line and returns an unknown result; changes nothing."""

from __future__ import annotations

from orchestrator.actions import Action, Result


class RecordingExecutor:
    dry_run = True

    def __init__(self) -> None:
        self.lines: list[str] = []

    def execute(self, action: Action) -> Result:
        self.lines.append(action.describe())
        return Result.unknown()

    def close(self) -> None:
        pass
