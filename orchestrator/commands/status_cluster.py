"""`status` of a Ray cluster (config `cluster`): what its head says now.

A cluster's nodes are rows like a fleet's replicas (server state, cost), but the engine is the Ray app, reached
through the head: so the cluster is asked once, with the deploy's own readiness checks made once each without
waiting (RayCluster.nodes_alive_check, then ray_serve.readiness: the Serve application RUNNING with every
deployment HEALTHY, the model listed, a 1-token completion). The first check that fails says why, and the rest
are not asked. Nothing here imports httpx or pydantic until a cluster is there to ask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from orchestrator.state_doc import DeploymentView

PROBE_TIMEOUT = 5.0
CHECKS = ("nodes", "serve", "model", "completion")  # the order of [nodes_alive_check, *ray_serve.readiness]
NODE_DETAIL = "a Ray node: the app's health is the cluster's (ray: below)"


def is_cluster(dep: DeploymentView) -> bool:
    return isinstance(dep.config.get("cluster"), dict)


def cluster_live(dep: DeploymentView) -> dict[str, Any]:
    """``checked``, ``ok``, ``nodes`` and ``serve`` (what Ray answered, or why not), ``detail`` (the last
    answer, or the first failure)."""
    import dataclasses

    from orchestrator import ray_serve
    from orchestrator.config import DeploymentConfig
    from orchestrator.health import run_check
    from orchestrator.ray_cluster import RayCluster, RayNode
    from orchestrator.secrets import load_secrets

    doc: dict[str, Any] = {"checked": False, "ok": None, "nodes": None, "serve": None, "detail": ""}
    servers = [(r.number, r.server) for r in dep.replicas if r.server is not None]
    if not servers or servers[0][0] != 1 or not servers[0][1].ip:
        doc["detail"] = "no head recorded (r1 has no server)"
        return doc
    try:
        cfg = DeploymentConfig.model_validate(dep.config)
    except ValueError as exc:
        doc["detail"] = f"cannot read the config snapshot: {exc}"
        return doc
    nodes = [RayNode(f"r{n}", s.private_ip or "", s.ip or "") for n, s in servers]
    cluster = RayCluster(cfg, nodes)
    secrets = load_secrets(cfg, create_api_key=False)[0]
    doc.update(checked=True, ok=True)
    for key, check in zip(CHECKS, [cluster.nodes_alive_check(), *ray_serve.readiness(cluster)], strict=True):
        once = dataclasses.replace(check, wait=None, liveness=None, log_tail=None, timeout=PROBE_TIMEOUT)
        try:
            detail = run_check(once, secrets).stdout
        except OrchestratorError as exc:
            doc.update(ok=False, detail=f"{key}: {exc.message}")
            if key in ("nodes", "serve"):
                doc[key] = exc.message
            return doc
        if key in ("nodes", "serve"):
            doc[key] = detail
        doc["detail"] = detail
    return doc


def start(deps: list[DeploymentView]) -> dict[str, Future[dict[str, Any]]]:
    """Each cluster's check, started in a thread of its own (status's other checks run meanwhile)."""
    from concurrent.futures import ThreadPoolExecutor

    clusters = [d for d in deps if is_cluster(d)]
    if not clusters:
        return {}
    import orchestrator.ray_serve  # noqa: F401 - imported here first: threads importing at once can deadlock

    pool = ThreadPoolExecutor(max_workers=len(clusters), thread_name_prefix="status-ray")
    futures = {d.name: pool.submit(cluster_live, d) for d in clusters}
    pool.shutdown(wait=False)
    return futures


def lines(name: str, doc: dict[str, Any]) -> list[str]:
    if not doc["checked"]:
        return [f"live {name} (Ray cluster):", f"  ray:     not checked: {doc['detail']}"]
    out = [f"live {name} (Ray cluster):", f"  nodes:   {doc['nodes'] or '-'}", f"  serve:   {doc['serve'] or '-'}"]
    out.append(f"  app:     {'healthy' if doc['ok'] else 'UNHEALTHY'}: {doc['detail']}")
    return out
