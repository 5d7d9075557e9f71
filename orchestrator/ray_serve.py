"""Ray Serve LLM on the cluster, as plan data: the Serve config file, `serve deploy`, readiness, metrics, shutdown.

The app is ``ray.serve.llm:build_openai_app`` with one ``LLMConfig`` built from the vLLM engine config
(``cluster.import_path`` points CPU tests at a stand-in with the same routes). Ready means the dashboard's
``GET /api/serve/applications/`` reports the application RUNNING with every deployment HEALTHY, and a 1-token
completion through the head's endpoint answers.

Metrics: the head writes Ray's Prometheus service-discovery file (``<temp_dir>/prom_metrics_service_discovery.json``,
``[{"labels": {"job": "ray"}, "targets": ["<private ip>:<metrics port>", ...]}]``). It is read over SSH and
rewritten into a file_sd file beside the laptop's prometheus.yml: each private address becomes the node's public
one (the laptop cannot reach the private network) and the labels name the deployment.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.actions import HttpCheck, OnNode, Pause, Remote, Upload, WriteLocal
from orchestrator.config import EngineConfig
from orchestrator.monitoring import ScrapeTarget, file_sd_document, job_name
from orchestrator.ray_cluster import ClusterGen, RayCluster, RayClusterError, RayNode, require

if TYPE_CHECKING:
    import httpx

    from orchestrator.health import Verdict

DISCOVERY_FILE = "prom_metrics_service_discovery.json"


def engine_kwargs(cluster: RayCluster) -> dict[str, Any]:
    """vLLM's engine arguments from engine: (snake_case, as LLMConfig.engine_kwargs takes them), then cluster's."""
    e = cluster.cfg.engine
    assert isinstance(e, EngineConfig)  # config validation allows only vLLM under a cluster
    kwargs: dict[str, Any] = {"gpu_memory_utilization": e.gpu_memory_utilization}
    if e.max_model_len:
        kwargs["max_model_len"] = e.max_model_len
    if e.dtype != "auto":
        kwargs["dtype"] = e.dtype
    kwargs["tensor_parallel_size"] = cluster.cfg.gpu.count or 1
    kwargs.update(cluster.c.engine_kwargs)
    return kwargs


def llm_config(cluster: RayCluster) -> dict[str, Any]:
    e = cluster.cfg.engine
    c = cluster.c
    autoscaling = {"min_replicas": c.min_replicas, "max_replicas": c.max_replicas}
    deployment: dict[str, Any] = {"autoscaling_config": autoscaling}
    if c.max_ongoing_requests is not None:
        deployment["max_ongoing_requests"] = c.max_ongoing_requests
    doc: dict[str, Any] = {"model_loading_config": {"model_id": e.served, "model_source": e.model}}
    if c.accelerator_type:
        doc["accelerator_type"] = c.accelerator_type
    doc["deployment_config"] = deployment
    doc["engine_kwargs"] = engine_kwargs(cluster)
    return doc


def app_config(cluster: RayCluster) -> dict[str, Any]:
    """The one application of the Serve config (what `serve config -n <app>` gives back once it is deployed)."""
    c = cluster.c
    return {
        "name": c.app_name,
        "route_prefix": "/",
        "import_path": c.import_path,
        "args": {"llm_configs": [llm_config(cluster)]},
    }


def serve_config(cluster: RayCluster) -> str:
    """The Serve config file (`serve deploy` takes it): one application, HTTP on every node's proxy."""
    import yaml

    c = cluster.c
    doc = {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": c.ports.serve_http},
        "applications": [app_config(cluster)],
    }
    header = f"# written by orchestrator for deployment {cluster.cfg.name}: Ray Serve LLM, `serve deploy` this file\n"
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def serve_config_path(cluster: RayCluster) -> str:
    return f"{cluster.run_dir}/serve.yaml"


def local_dashboard(cluster: RayCluster) -> str:
    """The dashboard as commands on the head reach it (--dashboard-host=0.0.0.0 listens on loopback too)."""
    return f"http://127.0.0.1:{cluster.c.ports.dashboard}"


def upload_config(cluster: RayCluster) -> Upload:
    return Upload(serve_config_path(cluster), serve_config(cluster), 0o644)


def current_config(cluster: RayCluster) -> Remote:
    """The app's config as Serve runs it now (YAML), or a sentence that none is deployed."""
    return Remote(
        f"{cluster.serve} config -a {local_dashboard(cluster)} -n {shlex.quote(cluster.c.app_name)} < /dev/null",
        "which Serve config runs now?",
        timeout=120,
    )


def parse_current(text: str) -> dict[str, Any] | None:
    """`serve config -n <app>` output as a dict; None when nothing is deployed (or the answer is not YAML)."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return doc if isinstance(doc, dict) and "import_path" in doc else None


def config_changes(old: Any, new: Any, path: str = "") -> list[str]:
    """What differs in ``new`` from ``old``, one ``path: old -> new`` per leaf (keys only ``old`` has are Serve's
    own additions and do not count)."""
    if isinstance(new, dict) and isinstance(old, dict):
        return [c for k, v in new.items() for c in config_changes(old.get(k), v, f"{path}.{k}" if path else k)]
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [c for i, (o, n) in enumerate(zip(old, new, strict=True)) for c in config_changes(o, n, f"{path}[{i}]")]
    return [] if old == new else [f"{path}: {json.dumps(old)} -> {json.dumps(new)}"]


def deploy(cluster: RayCluster) -> Remote:
    path = shlex.quote(serve_config_path(cluster))
    return Remote(
        f"{cluster.serve} deploy -a {local_dashboard(cluster)} {path} < /dev/null",
        "deploy the Serve application",
        timeout=300,
    )


def endpoint(cluster: RayCluster) -> str:
    return f"http://{cluster.head.public_ip}:{cluster.c.ports.serve_http}"


def readiness(cluster: RayCluster) -> list[HttpCheck]:
    """RUNNING with every deployment HEALTHY, the model listed, a 1-token completion answers (through the head)."""
    c = cluster.c
    e = cluster.cfg.engine
    alive, logs = cluster.running_probe(), cluster.log_tail()
    body = json.dumps({"model": e.served, "prompt": "Hello", "max_tokens": 1, "temperature": 0})
    base = endpoint(cluster)
    return [
        HttpCheck(
            "GET",
            f"{cluster.dashboard_url()}/api/serve/applications/",
            "ray-serve-running",
            c.app_name,
            wait=c.ready_timeout,
            interval=2.0,
            liveness=alive,
            log_tail=logs,
        ),
        HttpCheck("GET", f"{base}/v1/models", "openai-model", e.served, wait=60.0, interval=1.0, liveness=alive),
        HttpCheck(
            "POST",
            f"{base}/v1/completions",
            "openai-completion",
            json_body=body,
            wait=120.0,
            interval=2.0,
            timeout=60.0,
            liveness=alive,
            log_tail=logs,
        ),
    ]


def shutdown(cluster: RayCluster) -> Remote:
    return Remote(f"{cluster.serve} shutdown -y -a {local_dashboard(cluster)} < /dev/null", "shut Serve down")


# -- readiness verdicts (health.EXPECTATIONS) ----------------------------------------------------------------


def expect_serve_running(resp: httpx.Response, app: str) -> Verdict:
    """`GET /api/serve/applications/`: the app RUNNING and each of its deployments HEALTHY."""
    from orchestrator.health import Verdict

    if resp.status_code != 200:
        return Verdict(False, f"HTTP {resp.status_code}")
    try:
        body = json.loads(resp.text)
    except ValueError:
        return Verdict(False, "the Serve API answered no JSON")
    apps = body.get("applications") if isinstance(body, dict) else None
    info = apps.get(app) if isinstance(apps, dict) else None
    if not isinstance(info, dict):
        return Verdict(False, f"application {app} not deployed yet")
    status = info.get("status")
    raw = info.get("deployments")
    deployments: dict[str, Any] = raw if isinstance(raw, dict) else {}
    states = {name: d.get("status") for name, d in deployments.items() if isinstance(d, dict)}
    summary = ", ".join(f"{name} {s}" for name, s in sorted(states.items())) or "no deployments yet"
    if status == "DEPLOY_FAILED":
        return Verdict(False, f"application {app} DEPLOY_FAILED: {info.get('message', '')}".strip(), fatal=True)
    if status == "RUNNING" and states and all(s == "HEALTHY" for s in states.values()):
        return Verdict(True, f"application {app} RUNNING ({summary})")
    return Verdict(False, f"application {app} {status} ({summary})")


def expect_nodes_alive(resp: httpx.Response, count: str) -> Verdict:
    """The dashboard's `GET /nodes?view=summary`: at least ``count`` nodes ALIVE."""
    from orchestrator.health import Verdict

    if resp.status_code != 200:
        return Verdict(False, f"HTTP {resp.status_code}")
    alive = alive_node_ips(resp.text)
    want = int(count)
    detail = f"{len(alive)} of {want} Ray node(s) alive ({', '.join(sorted(alive)) or 'none'})"
    return Verdict(len(alive) >= want, detail)


def alive_node_ips(text: str) -> list[str]:
    """The addresses of the ALIVE nodes in the dashboard's `/nodes?view=summary` answer."""
    try:
        body = json.loads(text)
    except ValueError:
        return []
    data = body.get("data") if isinstance(body, dict) else None
    rows = data.get("summary") if isinstance(data, dict) else None
    ips = []
    for row in rows if isinstance(rows, list) else []:
        raylet = row.get("raylet") if isinstance(row, dict) else None
        if isinstance(raylet, dict) and raylet.get("state") == "ALIVE":
            ips.append(str(row.get("ip") or raylet.get("nodeManagerAddress")))
    return ips


# -- metrics: Ray's service-discovery file, rewritten for the laptop's Prometheus ------------------------------


def discovery_read(cluster: RayCluster) -> Remote:
    return Remote(
        f"cat {cluster.temp_dir}/{DISCOVERY_FILE}", "Ray's Prometheus service-discovery file (head)", timeout=30
    )


def ray_job(deployment: str) -> str:
    return job_name(deployment) + "-ray"


def rewrite_discovery(text: str, cluster: RayCluster) -> str:
    """Ray's file_sd document with each node's private address replaced by its public one, as our file_sd file.

    Every target must be a node of this cluster (an unknown address means the plan's node list is stale).
    """
    try:
        groups = json.loads(text)
    except ValueError:
        raise RayClusterError(f"Ray's {DISCOVERY_FILE} is not JSON", details=text[:500]) from None
    by_private: dict[str, RayNode] = {n.private_ip: n for n in cluster.nodes}
    targets: list[str] = []
    unknown: list[str] = []
    for group in groups if isinstance(groups, list) else []:
        for target in group.get("targets", []) if isinstance(group, dict) else []:
            host, _, port = str(target).rpartition(":")
            node = by_private.get(host)
            if node is None or not port.isdigit():
                unknown.append(str(target))
                continue
            targets.append(f"{node.public_ip}:{port}")
    if unknown:
        raise RayClusterError(
            f"Ray's {DISCOVERY_FILE} names targets that are not nodes of this cluster: {', '.join(unknown)}",
            "the cluster has nodes this deployment does not know; redeploy so the node list is current",
        )
    if not targets:
        raise RayClusterError(f"Ray's {DISCOVERY_FILE} lists no metrics targets yet", details=text[:500])
    job = ScrapeTarget(
        job=ray_job(cluster.cfg.name),
        targets=tuple(sorted(set(targets))),
        labels=(("deployment", cluster.cfg.name), ("engine", "vllm-ray"), ("model", cluster.cfg.engine.served)),
    )
    return file_sd_document([job])


# -- the plans ------------------------------------------------------------------------------------------------


def serve_up(cluster: RayCluster) -> ClusterGen:
    """Write the Serve config on the head, `serve deploy` it, and wait until it is ready (readiness).

    `serve deploy` is declarative: the same config again changes nothing, a changed one updates the running app in
    place (Serve replaces replicas gracefully). The note says which it was, from the config running before.
    """
    head = cluster.head
    r = yield OnNode(head.name, current_config(cluster))
    before = parse_current(r.stdout) if r.known and r.rc == 0 else None
    yield OnNode(head.name, upload_config(cluster))
    action = deploy(cluster)
    r2 = yield OnNode(head.name, action)
    require(r2, head, action)
    for check in readiness(cluster):
        yield OnNode(head.name, check)
    done = f"Serve application {cluster.c.app_name} RUNNING at {endpoint(cluster)}/v1"
    if not r.known:
        return done
    if before is None:
        return f"{done} (deployed)"
    changes = config_changes(before, app_config(cluster))
    if not changes:
        return f"{done} (already running with this config: re-applied, unchanged)"
    more = f" and {len(changes) - 5} more" if len(changes) > 5 else ""
    return f"{done} (updated in place: {'; '.join(changes[:5])}{more})"


def serve_down(cluster: RayCluster) -> ClusterGen:
    action = shutdown(cluster)
    r = yield OnNode(cluster.head.name, action)
    require(r, cluster.head, action)
    return "Serve shut down"


def file_sd_path(prometheus_config: Path, deployment: str) -> Path:
    """Our file_sd file for the cluster's Ray targets, beside prometheus.yml."""
    return prometheus_config.parent / "file_sd" / f"{ray_job(deployment)}.json"


def scrape_discovery(cluster: RayCluster, dest: Path, tries: int = 30, interval: float = 2.0) -> ClusterGen:
    """Read Ray's discovery file on the head until it lists every node's metrics port (the head's autoscaler and
    dashboard metrics come first) and no other node (after a scale-down the leaving node stays in it until Ray has
    noticed it gone and rewritten the file), then write it rewritten to ``dest``."""
    text = ""
    for attempt in range(tries):
        r = yield OnNode(cluster.head.name, discovery_read(cluster))
        if not r.known:  # dry-run: show the write with what a cluster of these nodes would list
            text = json.dumps([{"labels": {"job": "ray"}, "targets": _planned_targets(cluster)}])
            break
        text = r.stdout
        if r.rc == 0 and _lists_this_cluster(text, cluster):
            break
        if attempt < tries - 1:
            yield OnNode(cluster.head.name, Pause(interval, "Ray rewrites its discovery file every few seconds"))
    document = rewrite_discovery(text, cluster)
    yield OnNode(None, WriteLocal(dest, document))
    return f"{len(json.loads(document)[0]['targets'])} Ray metrics target(s) in {dest}"


def _planned_targets(cluster: RayCluster) -> list[str]:
    return [f"{n.private_ip}:{cluster.c.ports.metrics_export}" for n in cluster.nodes]


def _lists_this_cluster(text: str, cluster: RayCluster) -> bool:
    """Every node's metrics port is listed, and every listed target is on a node of this cluster."""
    try:
        groups = json.loads(text)
    except ValueError:
        return False
    if not isinstance(groups, list):
        return False
    listed = {str(t) for g in groups if isinstance(g, dict) for t in g.get("targets", [])}
    ours = {n.private_ip for n in cluster.nodes}
    return set(_planned_targets(cluster)) <= listed and all(t.rpartition(":")[0] in ours for t in listed)
