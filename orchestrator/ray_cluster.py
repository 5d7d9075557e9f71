"""A Ray cluster on plain servers, as plan data: install, the version check, `ray start` lines, `ray stop`.

One head (``ray start --head``: GCS, dashboard and the Serve REST API) and workers that join it at
``<head private ip>:<gcs port>``. Every port a node opens is pinned (config ``cluster.ports``), so the firewall
of the private network can name them. The plan is a generator of ``OnNode`` actions: each is an ordinary
action (orchestrator.actions) for one named node's executor; the Serve part lives in orchestrator.ray_serve.

``deploy`` runs these plans once per cluster after its servers are up (steps/cluster.py), each action on its
node's own SSH session (transports/nodes.py).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace

from orchestrator import ray_converge as rc
from orchestrator.actions import Action, HttpCheck, OnNode, Remote, Result
from orchestrator.cluster_config import ClusterConfig
from orchestrator.config import DeploymentConfig
from orchestrator.engines.logs import RAY_LOGS, home_word
from orchestrator.errors import EngineError
from orchestrator.ray_converge import Decision

RAY_ENV = "RAY_USAGE_STATS_ENABLED=0"  # with --disable-usage-stats: no usage report leaves the node
VERSION_RE = re.compile(r"^ray, version (\S+)\s*$", re.MULTILINE)  # `ray --version` (click) prints this
# Ray's daemons, by process name or command line; the brackets keep pgrep from matching its own shell.
RAY_PROCESSES = "[g]cs_server|[r]aylet|[r]ay::|[d]ashboard/(dashboard|agent)\\.py|[r]ay/_private/(log_monitor|monitor)"


class RayClusterError(EngineError):
    """The Ray cluster could not be brought up, checked or torn down."""


@dataclass(frozen=True)
class RayNode:
    """One server of the cluster: its name, the address Ray uses (private network) and the one we reach."""

    name: str
    private_ip: str
    public_ip: str


ClusterGen = Generator[OnNode, Result, str | None]


def placeholder_nodes(count: int) -> list[RayNode]:
    """The nodes of a plan before the servers exist (dry-run)."""
    return [RayNode(f"node{i}", f"<node{i}.private_ip>", f"<node{i}.ip>") for i in range(1, count + 1)]


def parse_version(output: str) -> str | None:
    """The version in `ray --version` output (``ray, version 2.60.0``), or None."""
    m = VERSION_RE.search(output)
    return m.group(1) if m else None


def check_versions(outputs: Mapping[str, str], want: str) -> str:
    """Every node must run exactly ``want``; one error names each node that does not (and what it runs)."""
    found = {node: parse_version(text) for node, text in outputs.items()}
    wrong = {node: v for node, v in found.items() if v != want}
    if not wrong:
        return f"ray {want} on {len(found)} node(s)"
    listing = ", ".join(f"{node}: {v or 'no ray --version answer'}" for node, v in sorted(wrong.items()))
    raise RayClusterError(
        f"Ray versions differ: the cluster needs ray {want} on every node ({listing})",
        "Ray refuses mixed versions; set cluster.install: pip so each node gets ray=="
        f"{want}, or install that version into cluster.venv on the nodes listed",
    )


class RayCluster:
    """The cluster's commands for one deployment config; ``nodes[0]`` is the head."""

    def __init__(self, cfg: DeploymentConfig, nodes: Sequence[RayNode]) -> None:
        if cfg.cluster is None:
            raise TypeError("RayCluster needs a config with a cluster section")
        if not nodes:
            raise ValueError("a Ray cluster needs at least one node")
        self.cfg = cfg
        self.c: ClusterConfig = cfg.cluster
        self.nodes = list(nodes)
        self.head = self.nodes[0]
        self.workers = self.nodes[1:]
        self.run_dir = f".orchestrator/{cfg.name}"
        self.venv = home_word(self.c.venv)
        self.ray = f"{self.venv}/bin/ray"
        self.serve = f"{self.venv}/bin/serve"
        self.temp_dir = home_word(self.c.temp_dir)

    # -- install and version ----------------------------------------------------------------------
    @property
    def package(self) -> str:
        return f"{self.c.package}=={self.c.ray_version}"

    def version_probe(self) -> Remote:
        return Remote(f"{self.ray} --version", "which Ray is on this node?", timeout=60)

    def install(self) -> list[Remote]:
        if self.c.install == "none":
            return []
        return [
            Remote(f"python3 -m venv {self.venv}", "create the Ray venv (Ubuntu 24.04 refuses system pip)"),
            Remote(f"{self.venv}/bin/pip install {shlex.quote(self.package)}", "install Ray", timeout=3600),
        ]

    # -- start ------------------------------------------------------------------------------------
    def _common_flags(self, node: RayNode) -> list[str]:
        p = self.c.ports
        return [
            f"--node-ip-address={node.private_ip}",
            f"--metrics-export-port={p.metrics_export}",
            f"--object-manager-port={p.object_manager}",
            f"--node-manager-port={p.node_manager}",
            f"--dashboard-agent-listen-port={p.dashboard_agent}",
            f"--min-worker-port={p.min_worker}",
            f"--max-worker-port={p.max_worker}",
            "--disable-usage-stats",
        ]

    def head_argv(self) -> list[str]:
        p = self.c.ports
        return [
            "start",
            "--head",
            f"--port={p.gcs}",
            "--dashboard-host=0.0.0.0",
            f"--dashboard-port={p.dashboard}",
            *self._common_flags(self.head),
        ]

    def worker_argv(self, node: RayNode) -> list[str]:
        return ["start", f"--address={self.head.private_ip}:{self.c.ports.gcs}", *self._common_flags(node)]

    def head_env(self) -> str:
        """The head's two metrics endpoints besides the node's are pinned by environment (no flag exists)."""
        p = self.c.ports
        return f"AUTOSCALER_METRIC_PORT={p.autoscaler_metrics} DASHBOARD_METRIC_PORT={p.dashboard_metrics}"

    def _start(self, argv: list[str], purpose: str, env: str = "") -> Remote:
        # All fds redirected: Ray's daemons outlive `ray start` and must not hold the SSH channel open.
        rd = shlex.quote(self.run_dir)
        log = shlex.quote(f"{self.run_dir}/ray-start.log")
        return Remote(
            f"mkdir -p {rd} && chmod 700 {rd} || exit 1; {RAY_ENV} {env}{self.ray} {shlex.join(argv)} "
            f"--temp-dir={self.temp_dir} > {log} 2>&1 < /dev/null; rc=$?; tail -n 30 {log}; exit $rc",
            purpose,
            timeout=180,
        )

    def head_start(self) -> Remote:
        return self._start(self.head_argv(), "start the Ray head", self.head_env() + " ")

    def worker_start(self, node: RayNode) -> Remote:
        return self._start(self.worker_argv(node), f"start a Ray worker joining {self.head.private_ip}")

    def dashboard_url(self) -> str:
        """The head's dashboard as the laptop reaches it."""
        return f"http://{self.head.public_ip}:{self.c.ports.dashboard}"

    def nodes_alive_check(self) -> HttpCheck:
        """The dashboard lists every node ALIVE (the workers joined)."""
        return HttpCheck(
            "GET",
            f"{self.dashboard_url()}/nodes?view=summary",
            "ray-nodes-alive",
            str(len(self.nodes)),
            wait=120.0,
            interval=1.0,
            liveness=self.running_probe(),
            log_tail=self.log_tail(),
        )

    def running_probe(self) -> Remote:
        """Is the head's GCS still running?"""
        return Remote('pgrep -u "$(id -u)" -x gcs_server > /dev/null', "is the Ray head running?", timeout=30)

    def log_tail(self) -> Remote:
        logs = f"{self.temp_dir}/{RAY_LOGS}"
        return Remote(
            f"tail -n 40 {shlex.quote(self.run_dir + '/ray-start.log')} {logs}/gcs_server.err "
            f"{logs}/serve/controller_*.log 2>/dev/null",
            "Ray's logs on the head",
        )

    # -- stop -------------------------------------------------------------------------------------
    def stop(self) -> Remote:
        return Remote(f"{self.ray} stop", "stop every Ray process of this node", timeout=120)

    def leftover_probe(self) -> Remote:
        """Lists the Ray processes still running for the login user (empty output: none)."""
        return Remote(
            f'pgrep -u "$(id -u)" -a -f {shlex.quote(RAY_PROCESSES)} || true', "Ray processes left?", timeout=30
        )


def bring_up(cluster: RayCluster, keep_only: str | None = None) -> ClusterGen:
    """Install (when missing or another version), check versions everywhere, then on each node start Ray unless
    Ray of this cluster already runs there (ray_converge: probe, keep/start/restart), head first, and wait until
    the head sees every node ALIVE.

    ``keep_only`` (redeploy): Ray must already run as configured on every node; nothing is installed, started or
    stopped, and any other finding is an error whose hint is ``keep_only``.
    """
    c = cluster.c
    versions: dict[str, str] = {}
    reinstalled: set[str] = set()
    for node in cluster.nodes:
        r = yield OnNode(node.name, cluster.version_probe())
        found = parse_version(r.stdout) if r.known else None
        if keep_only is not None:
            if r.known and found != c.ray_version:
                raise RayClusterError(
                    f"{node.name} has ray {found or 'none'} installed, the config pins {c.ray_version}: a Ray "
                    "version change needs Ray restarted on every node, which redeploy does not do",
                    keep_only,
                )
        elif c.install == "pip" and found != c.ray_version:
            for action in cluster.install():
                r = yield OnNode(node.name, action)
                require(r, node, action)
            reinstalled.add(node.name)
            r = yield OnNode(node.name, cluster.version_probe())
        versions[node.name] = r.stdout if r.known else f"ray, version {c.ray_version}"
    checked = check_versions(versions, c.ray_version)
    decisions: list[Decision] = []
    r = yield from _probe(cluster, cluster.head)
    seen = rc.parse_probe(r, cluster.head)
    head = _checked(rc.decide_head(cluster, seen, cluster.head.name in reinstalled), seen, keep_only)
    decisions.append(head)
    notes = (
        [f"{cluster.head.name}: {seen.foreign} Ray process(es) of another address left alone"] if seen.foreign else []
    )
    yield from _converge(cluster, cluster.head, head, cluster.head_start())
    for node in cluster.workers:
        r = yield from _probe(cluster, node)
        there = rc.parse_probe(r, node)
        decision = rc.decide_worker(cluster, node, there, head, seen, node.name in reinstalled)
        decisions.append(_checked(decision, there, keep_only))
        yield from _converge(cluster, node, decisions[-1], cluster.worker_start(node))
    yield OnNode(cluster.head.name, cluster.nodes_alive_check())
    if keep_only is not None:
        done = "Ray must already run on every node" if seen.planned else f"Ray kept on {len(cluster.nodes)} node(s)"
    else:
        done = rc.PLANNED if seen.planned else rc.summary(decisions)
    tail = "; ".join([done, *notes])
    return f"{checked}; head {cluster.head.private_ip}, {len(cluster.workers)} worker(s) joined; {tail}"


def _probe(cluster: RayCluster, node: RayNode) -> Generator[OnNode, Result, Result]:
    r = Result.unknown()
    for action in rc.probe(cluster, node):
        r = yield OnNode(node.name, action)
        if r.known and r.rc != 0:
            return r  # parse_probe: no answer (then the start line runs, and says why it fails if it does)
    return r


def _checked(decision: Decision, found: rc.RayOnNode, keep_only: str | None) -> Decision:
    """In keep-only mode (redeploy) anything but keep is an error; a dry run (no probe answer) plans keep."""
    if keep_only is None or decision.verdict == "keep":
        return decision
    if found.planned:
        return Decision(decision.node, "keep", "not probed")
    raise RayClusterError(
        f"{decision.node}: Ray is not running as configured ({decision.why}); redeploy keeps Ray as it is",
        keep_only,
    )


def _converge(cluster: RayCluster, node: RayNode, decision: Decision, start: Remote) -> ClusterGen:
    """Act on one node's decision: nothing (keep), ``ray stop`` first (restart), then the start line."""
    if decision.verdict == "keep":
        return None
    if decision.verdict == "restart":
        stop = replace(cluster.stop(), purpose=f"stop Ray to restart it ({decision.why})")
        r = yield OnNode(node.name, stop)
        require(r, node, stop)
    start = replace(start, purpose=f"{start.purpose} ({decision.why})")
    r = yield OnNode(node.name, start)
    require(r, node, start)
    return None


def tear_down(cluster: RayCluster) -> ClusterGen:
    """`ray stop` on the workers, then the head, then prove no Ray process is left on any node."""
    return (yield from stop_nodes(cluster, [*cluster.workers, cluster.head], checked=cluster.nodes))


def stop_nodes(cluster: RayCluster, nodes: Sequence[RayNode], checked: Sequence[RayNode] = ()) -> ClusterGen:
    """`ray stop` on each of ``nodes`` in turn, then prove no Ray process is left on them. A raylet stopped so
    tells the head it goes: the head marks the node dead at once (Serve moves what it held), instead of noticing
    only when the node's health checks time out, as when its server is just deleted."""
    for node in nodes:
        action = cluster.stop()
        r = yield OnNode(node.name, action)
        require(r, node, action)
    left: list[str] = []
    for node in checked or nodes:  # the same nodes (``checked``: in another order)
        r = yield OnNode(node.name, cluster.leftover_probe())
        if r.known and r.stdout.strip():
            left.append(f"{node.name}: {r.stdout.strip()}")
    if left:
        raise RayClusterError("Ray processes are still running after `ray stop`", details="\n".join(left))
    return f"Ray stopped on {len(nodes)} node(s)"


def require(r: Result, node: RayNode, action: Action) -> None:
    if r.known and r.rc != 0:
        purpose = getattr(action, "purpose", action.describe())
        raise RayClusterError(
            f"{node.name}: {purpose} failed (exit {r.rc})",
            "see the output below",
            details=(r.stdout + r.stderr)[-3000:] or None,
        )
