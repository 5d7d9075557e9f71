"""A Ray cluster's own steps (config `cluster`), run once for the whole fleet by orchestrator/fleet.py.

- private-network: the UpCloud private network the servers attach to, created (or adopted by name) and recorded
  before any server is created; its UUID goes to the replicas' provision (NETWORK_FACT).
- ray-cluster: one SSH session per node (OnNode: transports/nodes.py), then ray_cluster.bring_up: the version
  check and install on every node, `ray start --head`, the workers joining the head's private address, each node
  kept where Ray of this cluster already runs (ray_converge.py); on redeploy Ray must already run as configured.
- ray-serve: ray_serve.serve_up on the head: the Serve config, `serve deploy` (declarative: the same config again
  is a no-op, a changed one updates the app in place), readiness through the endpoint.
- ray-metrics: Ray's service-discovery file from the head, rewritten for the laptop, as a scrape job.
- ray-leave (deploy with fewer `cluster.nodes`): `ray stop` on each node that leaves, before its server is deleted.
- ray-down (teardown): `serve shutdown` on the head, `ray stop` on every node, no Ray process left.
- delete-network (teardown, after every server is confirmed gone): the network deleted and confirmed gone.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.actions import HomeProbe, Local, LockLocal, OnNode, Pause, ReadLocal, UnlockLocal, WriteLocal
from orchestrator.context import EXISTING_SERVER_ONLY, NETWORK_FACT, StepContext, StepGen
from orchestrator.errors import MonitoringError, OrchestratorError, TeardownIncomplete
from orchestrator.fleet_state import label
from orchestrator.monitoring import ScrapeTarget, check_config_argv, parse_promtool_output
from orchestrator.prometheus_yml import merge_scrape_job
from orchestrator.providers.base import NetworkNotEmpty, NetworkNotFound, NetworkSpec
from orchestrator.ray_cluster import (
    ClusterGen,
    RayCluster,
    RayNode,
    bring_up,
    placeholder_nodes,
    stop_nodes,
    tear_down,
)
from orchestrator.ray_serve import (
    file_sd_path,
    ray_job,
    scrape_discovery,
    serve_config,
    serve_config_path,
    serve_down,
    serve_up,
)
from orchestrator.state import MonitoringRecord, NetworkRecord
from orchestrator.steps.host import connect_action

NETWORK_PLACEHOLDER = "<network.uuid>"
DELETE_TRIES = 12  # NETWORK_NOT_EMPTY right after the servers went: the API detaches them a moment later


def network_name(ctx: StepContext) -> str:
    return f"{ctx.cfg.name}-ray"


def private_network(ctx: StepContext) -> StepGen:
    """Create the cluster's private network (or keep the recorded one, or adopt ours by name) and record it."""
    c = ctx.cfg.cluster
    assert c is not None
    up, zone, name = ctx.provider, ctx.cfg.provider.zone, network_name(ctx)
    rec = ctx.dep.network
    if rec is not None:
        show = up.network_show(rec.uuid, "is the recorded private network still there?")
        r = yield show.action
        if not r.known:
            ctx.facts[NETWORK_FACT] = rec.uuid
            return f"private network {rec.uuid} already recorded"
        err = show.error(r)
        if err is None:
            ctx.facts[NETWORK_FACT] = rec.uuid
            return f"private network {rec.uuid} ({rec.cidr}) already exists"
        if not isinstance(err, NetworkNotFound):
            raise err
        ctx.notify(f"recorded private network {rec.uuid} no longer exists; creating a new one")
        ctx.dep.network = None
        ctx.save()
    listing = up.network_list("is our private network already there?", zone=zone)
    r = yield listing.action
    found = [n for n in listing.parse(r) if n.name == name and n.network_type == "private"] if r.known else []
    if found:
        net = found[0]
        ctx.notify(f"found private network {net.uuid} ({name}) that was not in local state; adopting it")
    else:
        create = up.network_create(NetworkSpec(name=name, zone=zone, cidr=c.network_cidr), "create the private network")
        r = yield create.action
        if not r.known:
            ctx.facts[NETWORK_FACT] = NETWORK_PLACEHOLDER
            return f"would create private network {name} ({c.network_cidr}) in {zone}"
        net = create.parse(r)
    # Recorded before anything else can fail: from here on `teardown` can always find it.
    cidr = net.cidr or c.network_cidr
    ctx.dep.network = NetworkRecord(uuid=net.uuid, name=net.name, zone=net.zone or zone, cidr=cidr)
    ctx.save()
    ctx.facts[NETWORK_FACT] = net.uuid
    return f"private network {net.uuid} ({ctx.dep.network.cidr}) in {zone}"


def cluster_nodes(ctx: StepContext) -> list[RayNode]:
    """The cluster's nodes from the fleet's records (replica 1 is the head); placeholders before they exist."""
    c = ctx.cfg.cluster
    assert c is not None
    recs = sorted(ctx.dep.replicas, key=lambda r: r.index)
    if not recs or any(r.server is None or not r.server.ip for r in recs):
        return [RayNode(label(i), f"<{label(i)}.private_ip>", f"<{label(i)}.server.ip>") for i in range(1, c.nodes + 1)]
    nodes = []
    for rec in recs:
        srv = rec.server
        assert srv is not None and srv.ip is not None
        if not srv.private_ip:
            raise OrchestratorError(
                f"{label(rec.index)}: server {srv.uuid} has no address on the private network",
                f"check `upctl server show {srv.uuid}`; redeploy to attach it",
            )
        nodes.append(RayNode(label(rec.index), srv.private_ip, srv.ip))
    return nodes or placeholder_nodes(c.nodes)


def _connect(ctx: StepContext, cluster: RayCluster, deadline: float) -> ClusterGen:
    pinned = {label(r.index): r.server.host_key for r in ctx.dep.replicas if r.server is not None}
    for node in cluster.nodes:
        action = connect_action(ctx, deadline, host=node.public_ip, pinned_host_key=pinned.get(node.name))
        yield OnNode(node.name, action)
        yield OnNode(node.name, HomeProbe())  # relative uploads (the Serve config) land under $HOME
    return None


def ray_cluster(ctx: StepContext) -> StepGen:
    """deploy: Ray up on every node, kept where it already runs as configured; redeploy: Ray must run as is."""
    cluster = RayCluster(ctx.cfg, cluster_nodes(ctx))
    yield from _connect(ctx, cluster, ctx.cfg.ssh.connect_timeout)
    keep_only = keep_ray_hint(ctx) if ctx.facts.get(EXISTING_SERVER_ONLY) else None
    return (yield from bring_up(cluster, keep_only))


def keep_ray_hint(ctx: StepContext) -> str:
    config = ctx.dep.config_path or "CONFIG"
    return (
        f"redeploy keeps the servers and Ray and updates the Serve app only. Ray stopped on a node: "
        f"`orchestrator deploy {config}` starts it again; another Ray version, ports or node set: "
        f"`orchestrator teardown {ctx.cfg.name} --yes`, then `orchestrator deploy {config}`"
    )


def ray_serve(ctx: StepContext) -> StepGen:
    """On the sessions ray-cluster opened (same Runner, same router): the Serve config, deploy, readiness."""
    cluster = RayCluster(ctx.cfg, cluster_nodes(ctx))
    ctx.notify(f"Serve config ({serve_config_path(cluster)} on {cluster.head.name}):\n{serve_config(cluster).rstrip()}")
    return (yield from serve_up(cluster))


def ray_metrics(ctx: StepContext) -> StepGen:
    """Ray's targets (every node's metrics port: ray_*, ray_serve_*, ray_vllm_*) as one scrape job."""
    m = ctx.cfg.monitoring
    if not m.prometheus_config:
        return "disabled (no monitoring.prometheus_config)"
    cluster = RayCluster(ctx.cfg, cluster_nodes(ctx))
    path = Path(m.prometheus_config).expanduser()
    sd = file_sd_path(path, ctx.cfg.name)
    note = yield from scrape_discovery(cluster, sd)
    r = yield ReadLocal(sd)
    port = cluster.c.ports.metrics_export
    planned = [f"<{n.name}.server.ip>:{port}" for n in cluster.nodes]
    targets = _file_sd_targets(r.stdout) if r.known and r.rc == 0 else planned
    job = ScrapeTarget(
        job=ray_job(ctx.cfg.name),
        targets=tuple(targets),
        labels=(("deployment", ctx.cfg.name), ("engine", "vllm-ray"), ("model", ctx.cfg.engine.served)),
        scrape_interval=m.scrape_interval,
    )
    from orchestrator.steps.monitoring import _promtool, _reload, lock_path

    lock = lock_path(path)
    yield LockLocal(lock, f"merge scrape job {job.job} into {path}")
    try:
        r = yield ReadLocal(path)
        before = r.stdout if r.known and r.rc == 0 else None
        yield WriteLocal(path, merge_scrape_job(before, job), keep_existing=True)
        promtool = _promtool(ctx)
        if promtool:
            r = yield Local(tuple(check_config_argv(str(path))), "validate the Prometheus config", timeout=60)
            ok, messages = parse_promtool_output(r.rc, r.stdout, r.stderr)
            if r.known and not ok:
                if before is not None:
                    yield WriteLocal(path, before, keep_existing=True)
                raise MonitoringError(f"promtool refused {path}: {'; '.join(messages)}", "the old config is back")
        if m.reload_url:
            yield from _reload(m.reload_url)
    finally:
        yield UnlockLocal(lock)
    ctx.dep.monitoring = MonitoringRecord(prometheus_config=str(path), job=job.job, file_sd=str(sd))
    ctx.save()
    return f"{note}; scrape job {job.job} in {path}"


def _file_sd_targets(text: str) -> list[str]:
    try:
        groups = json.loads(text)
    except ValueError:
        return []
    return [str(t) for g in groups if isinstance(g, dict) for t in g.get("targets", [])]


def ray_leave(ctx: StepContext) -> StepGen:
    """The nodes above `cluster.nodes` (the highest-numbered; never the head) leave Ray before their servers go."""
    c = ctx.cfg.cluster
    assert c is not None
    leaving = [
        RayNode(label(r.index), r.server.private_ip or "", r.server.ip)
        for r in sorted(ctx.dep.replicas, key=lambda r: r.index)
        if r.index > c.nodes and r.server is not None and r.server.ip
    ]
    if not leaving:
        return "no node with a server leaves the cluster"
    cluster = RayCluster(ctx.cfg, leaving)  # only these nodes' sessions and commands
    yield from _connect(ctx, cluster, 20.0)
    note = yield from stop_nodes(cluster, leaving)
    return f"{note} leaving the cluster ({', '.join(n.name for n in leaving)})"


def ray_down(ctx: StepContext) -> StepGen:
    """`serve shutdown`, `ray stop` everywhere, nothing of Ray left; skipped when no server is reachable."""
    if ctx.cfg.cluster is None or not any(r.server and r.server.ip for r in ctx.dep.replicas):
        return "no cluster nodes recorded"
    cluster = RayCluster(ctx.cfg, cluster_nodes(ctx))
    yield from _connect(ctx, cluster, 20.0)
    notes = []
    try:
        notes.append((yield from serve_down(cluster)) or "")
    except OrchestratorError as exc:  # Serve not running (a failed deploy): `ray stop` still runs
        ctx.notify(f"serve shutdown failed ({exc.message}); stopping Ray anyway")
    notes.append((yield from tear_down(cluster)) or "")
    return "; ".join(n for n in notes if n)


def delete_network(ctx: StepContext) -> StepGen:
    """Delete the recorded private network once no server is attached, and confirm it is gone."""
    rec = ctx.dep.network
    if rec is None:
        return "no private network recorded"
    up = ctx.provider
    for attempt in range(DELETE_TRIES):
        delete = up.network_delete(rec.uuid, "delete the private network")
        r = yield delete.action
        err = delete.error(r)
        if err is None or isinstance(err, NetworkNotFound):
            break
        if not isinstance(err, NetworkNotEmpty) or attempt == DELETE_TRIES - 1:
            raise TeardownIncomplete(
                f"private network {rec.uuid} ({rec.name}) remains: {err.message}",
                f"retry `orchestrator teardown {ctx.cfg.name} --yes` (the record keeps it)",
            )
        yield Pause(5.0, "servers are still attached to the network")
    show = up.network_show(rec.uuid, "confirm the private network is gone")
    r = yield show.action
    if r.known:
        err = show.error(r)
        if not isinstance(err, NetworkNotFound):
            raise TeardownIncomplete(
                f"private network {rec.uuid} ({rec.name}) still exists after its delete",
                f"retry `orchestrator teardown {ctx.cfg.name} --yes` (the record keeps it)",
            )
    ctx.dep.network = None
    ctx.save()
    return f"private network {rec.uuid} deleted"
