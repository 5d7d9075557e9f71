"""The executor seam: the runner hands every action to one of these; dry-run swaps in a recording one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from orchestrator.actions import Action, Result

Notify = Callable[[str], None]


class Executor(Protocol):
    """Performs actions. ``execute`` returns the action's Result, or raises an OrchestratorError."""

    dry_run: bool

    def execute(self, action: Action) -> Result:
        """Perform one action; a Connect returns the server's host key line in stdout."""
        ...

    def close(self) -> None:
        """Release connections; safe to call twice."""
        ...
