"""A Ray cluster deployed as a fleet (config `cluster`): what orchestrator/fleet.py runs besides the replicas.

The cluster's servers are the fleet's replicas (replica 1 is the head, 2..N the workers), each running the usual
per-server steps except the single-server engine's (install-stack, start-engine, health, stop-engine): the Ray
app is the engine. Around them, the cluster's own steps run once through one Runner whose executor routes each
node's actions to that node's own SSH session (transports/nodes.py):

- deploy: private-network before any server is created; after every server is up: ray-cluster, ray-serve,
  ray-metrics (steps/cluster.py);
- redeploy: only ray-cluster (Ray must already run as configured: nothing is started or stopped), ray-serve (the
  changed Serve config re-applied: Ray Serve replaces the replicas in a rolling way, an old one stopped before its
  new one starts, so the endpoint keeps answering while two or more run) and
  ray-metrics; the servers and Ray are kept, the node set must be the recorded one (redeploy_cluster);
- deploy with fewer nodes: ray-leave (`ray stop` on each node that leaves; best effort, as ray-down) before
  their servers are deleted, then the deploy as above on the nodes that stay;
- teardown: ray-down before the servers are deleted (best effort: deleting a server stops its Ray), then
  delete-network once every server is confirmed gone, before the record is forgotten.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.commands.specs import CommandSpec
from orchestrator.config import DeploymentConfig
from orchestrator.context import EXISTING_SERVER_ONLY, StepContext
from orchestrator.errors import ConfigError
from orchestrator.fleet_state import label
from orchestrator.playbook import Playbook, PlaybookStep
from orchestrator.progress import ProgressReporter
from orchestrator.runner import Runner, StepOutcome
from orchestrator.transports.base import Executor
from orchestrator.transports.nodes import NodeRouter

ENGINE_KINDS = frozenset({"install-stack", "start-engine", "health", "stop-engine"})  # not run on a cluster node


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


def redeploy_book(cfg: DeploymentConfig) -> Playbook:
    """redeploy of a cluster: the Ray check (nothing started), the Serve config re-applied, the scrape job."""
    book = up_book(cfg)
    return book.model_copy(update={"name": "redeploy"})


def redeploy_cluster(
    spec: CommandSpec, ctx: StepContext, config_path: str, run_steps: Callable[[Playbook], list[StepOutcome]]
) -> list[StepOutcome]:
    """`redeploy` of a cluster: refused (before anything runs) when it would need new servers or a new Ray;
    else the cluster's redeploy steps, once (the per-node steps do not run: servers and Ray are kept)."""
    cfg = ctx.cfg
    c = cfg.cluster
    assert c is not None
    again = f"orchestrator teardown {cfg.name} --yes; orchestrator deploy {config_path}"
    if spec.fresh_record_before is not None:
        raise ConfigError("`redeploy --recreate` of a Ray cluster is not built", f"remove it and deploy again: {again}")
    recs = sorted(ctx.dep.replicas, key=lambda r: r.index)
    have = [label(r.index) for r in recs if r.server is not None]
    if [r.index for r in recs] != list(range(1, c.nodes + 1)) or len(have) != c.nodes:
        raise ConfigError(
            f"the config asks for a cluster of {c.nodes} node(s), the deployed one has {len(have)} "
            f"({', '.join(have) or 'none'}): redeploy keeps the servers and Ray as they are",
            f"a new node set needs a new cluster: {again}",
        )
    ctx.notify(f"redeploy of Ray cluster {cfg.name}: servers and Ray are kept; the Serve app is updated in place")
    if c.min_replicas < 2:
        ctx.notify(
            "warning: cluster.min_replicas is 1: if the Serve config changed, Serve replaces the LLM replica (it "
            "stops the old one first), so with one replica running the endpoint does not answer until the new one "
            "has loaded the model; min_replicas: 2 keeps one serving"
        )
    ctx.facts[EXISTING_SERVER_ONLY] = True  # ray-cluster: keep Ray as it runs, start or stop nothing
    return run_steps(redeploy_book(cfg))


def leave_book() -> Playbook:
    return Playbook(name="deploy", steps=[PlaybookStep(kind="ray-leave", timeout=300.0)])


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
