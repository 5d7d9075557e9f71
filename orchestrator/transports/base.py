"""The executor seam: the runner hands every action to one of these; dry-run swaps in a recording one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from orchestrator.actions import Action, Result

if TYPE_CHECKING:
    from orchestrator.health import Wait

Notify = Callable[[str], None]


class Feed(Protocol):
    """Where a live executor reports what happens inside an action while it runs (the progress reporter)."""

    def output(self, stream: str, line: str) -> None:
        """One line of a remote command's output as it arrives ("stdout" or "stderr"); not yet masked."""
        ...

    def waiting(self, wait: Wait) -> None:
        """A polling check's failed probe: what it waits for, why, elapsed and deadline (every probe)."""
        ...


class Executor(Protocol):
    """Performs actions. ``execute`` returns the action's Result, or raises an OrchestratorError."""

    dry_run: bool

    def execute(self, action: Action) -> Result:
        """Perform one action; a Connect returns the server's host key line in stdout."""
        ...

    def close(self) -> None:
        """Release connections; safe to call twice."""
        ...
