"""A cluster's executor: each ``OnNode`` action runs on its node's own executor (its own SSH session).

The cluster steps (steps/cluster.py) run once for the whole cluster through one Runner; this executor hands an
``OnNode(name, action)`` to the executor of that node (made on first use, so each node connects with its own
``Connect``), and every other action (local files, the provider's calls) to the fleet's own executor.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.actions import Action, OnNode, Result
from orchestrator.transports.base import Executor


class NodeRouter:
    """Routes ``OnNode`` actions to per-node executors; a dry run's router records through ``local``."""

    def __init__(self, local: Executor, make: Callable[[], Executor]) -> None:
        self.local = local
        self.make = make
        self.nodes: dict[str, Executor] = {}
        self.dry_run = local.dry_run

    def execute(self, action: Action) -> Result:
        if self.dry_run or not isinstance(action, OnNode):
            return self.local.execute(action)
        if action.node is None:
            return self.local.execute(action.action)
        executor = self.nodes.get(action.node)
        if executor is None:
            executor = self.nodes[action.node] = self.make()
        return executor.execute(action.action)

    def close(self) -> None:
        for executor in self.nodes.values():
            executor.close()
        self.nodes.clear()
