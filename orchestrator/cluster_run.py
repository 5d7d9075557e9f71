"""A Ray cluster deployed as a fleet (config `cluster`): what orchestrator/fleet.py runs besides the replicas.

The cluster's servers are the fleet's replicas (replica 1 is the head, 2..N the workers), each running the usual
per-server steps except the single-server engine's (install-stack, start-engine, health, stop-engine): the Ray
app is the engine. Around them, the cluster's own steps run once through one Runner whose executor routes each
node's actions to that node's own SSH session (transports/nodes.py):

- deploy: private-network before any server is created; after every server is up: ray-cluster, ray-serve,
  ray-metrics (steps/cluster.py);
- teardown: ray-down before the servers are deleted (best effort: deleting a server stops its Ray), then
  delete-network once every server is confirmed gone, before the record is forgotten.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.config import DeploymentConfig
from orchestrator.context import StepContext
from orchestrator.playbook import Playbook, PlaybookStep
from orchestrator.progress import ProgressReporter
from orchestrator.runner import Runner, StepOutcome
from orchestrator.transports.base import Executor
from orchestrator.transports.nodes import NodeRouter

ENGINE_KINDS = frozenset({"install-stack", "start-engine", "health", "stop-engine"})  # not run on a cluster node


def fleet_size(cfg: DeploymentConfig) -> int:
    """The fleet's servers: a cluster's nodes, else the replicas."""
    return cfg.cluster.nodes if cfg.cluster is not None else cfg.replicas


def network_book() -> Playbook:
    return Playbook(name="deploy", steps=[PlaybookStep(kind="private-network", timeout=300.0, retries=2)])


def up_book(cfg: DeploymentConfig) -> Playbook:
    c = cfg.cluster
    assert c is not None
    return Playbook(
        name="deploy",
        steps=[
            PlaybookStep(kind="ray-cluster", timeout=3600.0 + 600.0),  # pip install ray[llm] on every node
            PlaybookStep(kind="ray-serve", timeout=c.ready_timeout + 600.0),  # model download + vLLM start
            PlaybookStep(kind="ray-metrics", timeout=300.0),
        ],
    )


def down_book() -> Playbook:
    return Playbook(name="teardown", steps=[PlaybookStep(kind="ray-down", timeout=600.0)])


def delete_network_book() -> Playbook:
    return Playbook(name="teardown", steps=[PlaybookStep(kind="delete-network", timeout=600.0, retries=1)])


def run_cluster_steps(
    book: Playbook, ctx: StepContext, local: Executor, reporter: ProgressReporter, make: Callable[[], Executor]
) -> list[StepOutcome]:
    """Run the cluster's steps once, each node's actions on its own executor (made by ``make``)."""
    router = NodeRouter(local, make)
    try:
        return Runner(router, reporter).run(book, ctx)
    finally:
        router.close()
