"""`deploy` of a Ray cluster (config `cluster`) end to end on the mock cloud, then `teardown`.

Two mock hosts, each in its own network namespace (real sshd), real Ray (`ray[serve]` from the dev extras, seeded
into each host's venv: mockcloud/ray_venv.py, so `cluster.install: none`) and the CLI as a user runs it: the fake
upctl creates the private network and both servers on it (each server's private address lands in its host's
namespace: mockcloud/upctl_private.py), the per-node steps run, then the production Ray plan (the same `ray start`
lines, Serve config and readiness checks) with the stand-in Serve app (mockcloud.ray_standin: vLLM needs a GPU).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from mockcloud.cloud import MockCloud
from mockcloud.hosts import new_root
from mockcloud.prometheus import Prometheus
from mockcloud.ray_venv import seed_ray_venv
from mockcloud.upctl import read_state
from tests.conftest import asking_meanwhile, run_cli

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.ray,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="network namespaces need root"),
    pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)"),
]
NAME = "rayd"
# ray-site: the packages' world-readable copy the hosts import from when the checkout sits in a private directory
# (mockcloud/ray_venv.py). Missing one of Ray's daemons here leaves it running on the "killed" worker, and deploy
# then `ray stop`s that node.
RAY_PROCESS = re.compile(r"gcs_server|raylet|ray::|(site-packages|ray-site)/ray/|/bin/(ray|serve)\b")


@dataclass
class Deployed:
    cloud: MockCloud
    env: dict[str, str]
    config: Path
    prom: Prometheus | None
    deploy: subprocess.CompletedProcess[str]
    state: dict[str, object]


def _netns_pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _ray_pids(ns: str) -> list[str]:
    found = []
    for pid in _netns_pids(ns):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if RAY_PROCESS.search(cmd) and not cmd.startswith("sshd"):
            found.append(f"{pid} {cmd.strip()}")
    return found


def _config(cloud: MockCloud, root: Path, prom: Prometheus | None) -> Path:
    data = {
        "name": NAME,
        "provider": {"plan": "^GPU-8xCPU-64GB-1xL40S$", "storage_gb": 50},
        "ssh": {"user": cloud.user, "port": cloud.ssh_port, "private_key": str(cloud.client_key),
                "connect_timeout": "30s"},
        "engine": {"kind": "vllm", "model": "Qwen/Qwen2.5-0.5B-Instruct", "served_name": "qwen",
                   "max_model_len": 2048},
        "cluster": {"kind": "ray", "nodes": 2, "install": "none", "temp_dir": "ray",
                    "import_path": "mockcloud.ray_standin:build_app", "min_replicas": 2, "max_replicas": 2,
                    "ready_timeout": "5m"},
        "monitoring": {
            "prometheus_config": str(prom.config if prom else root / "prom" / "prometheus.yml"),
            "reload_url": f"{prom.url}/-/reload" if prom else None,
            "promtool": "never",
            "scrape_interval": "1s",
        },
    }  # fmt: skip
    path = root / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def deployed(shared_prom: Prometheus | None) -> Iterator[Deployed]:
    root = new_root("mcrd-")  # short: Ray's socket paths live under each host's home (108-byte limit)
    cloud = MockCloud(root, hosts=2, mode="netns", own_pids=True)  # each host its own PID space, as a server
    try:
        cloud.start()
        for host in cloud.hosts:
            seed_ray_venv(host.home, cloud.mock_hosts.host_python, host.user, shared=root)
        env = cloud.env() | {"ORCHESTRATOR_HOME": str(root / "home")}
        config = _config(cloud, root, shared_prom)
        proc = run_cli("deploy", str(config), env=env, timeout=900)
        state_file = root / "home" / "deployments" / f"{NAME}.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        yield Deployed(cloud, env, config, shared_prom, proc, state)
    finally:
        try:
            if (root / "home" / "deployments" / f"{NAME}.json").exists():
                run_cli("teardown", NAME, "--yes", env=cloud.env() | {"ORCHESTRATOR_HOME": str(root / "home")})
        finally:
            cloud.stop()  # every process in each namespace, by PID, then the namespaces and the bridge
            shutil.rmtree(root, ignore_errors=True)


def _head(d: Deployed) -> str:
    replicas = d.state["replicas"]
    assert isinstance(replicas, list)
    return str(replicas[0]["server"]["ip"])


def test_deploy_builds_the_cluster_on_one_private_network(deployed: Deployed) -> None:
    assert deployed.deploy.returncode == 0, deployed.deploy.stdout[-6000:] + deployed.deploy.stderr[-3000:]
    world = read_state(deployed.cloud.upctl_home)
    nets = world.get("networks") or []
    assert len(nets) == 1
    state = deployed.state
    assert isinstance(state["network"], dict) and state["network"]["uuid"] == nets[0]["uuid"]
    replicas = state["replicas"]
    assert isinstance(replicas, list) and [r["index"] for r in replicas] == [1, 2]
    assert all(str(r["server"]["private_ip"]).startswith("10.60.0.") for r in replicas)
    steps = state["steps"]
    assert isinstance(steps, dict)
    head_private = replicas[0]["server"]["private_ip"]
    # the worker joined the head at its private address; every node ran one Ray version
    assert f"ray 2.60.0 on 2 node(s); head {head_private}, 1 worker(s) joined" in steps["ray-cluster"]["note"]
    assert steps["ray-serve"]["status"] == "ok"
    for r in replicas:  # the Ray app is the engine: no single-server engine step ran on a node
        assert not {"install-stack", "start-engine", "health"} & set(r["steps"])
        assert r["engine"] is None


def test_endpoint_answers_through_the_head_and_serve_is_running(deployed: Deployed) -> None:
    head = _head(deployed)
    apps = httpx.get(f"http://{head}:8265/api/serve/applications/", timeout=10, trust_env=False).json()
    assert apps["applications"]["llm_app"]["status"] == "RUNNING"
    body = {"model": "qwen", "prompt": "Hello", "max_tokens": 1}

    def ask(_: int) -> dict[str, str]:
        resp = httpx.post(f"http://{head}:8000/v1/completions", json=body, timeout=30.0, trust_env=False)
        assert resp.status_code == 200, resp.text
        answer: dict[str, str] = resp.json()["served_by"]
        return answer

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(40)))
    private = {r["server"]["private_ip"] for r in deployed.state["replicas"]}  # type: ignore[union-attr]
    assert {a["node_ip"] for a in answers} == private  # replicas on both nodes answered


def test_bench_loads_the_cluster_through_the_heads_endpoint(deployed: Deployed) -> None:
    """bench NAME on a cluster: streamed completions through Serve's endpoint on the head, every one answered."""
    args = ["--json", "--concurrency", "2", "--requests", "6", "--input-tokens", "2", "--output-tokens", "3"]
    proc = run_cli("bench", NAME, *args, env=deployed.env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["endpoint"] == f"http://{_head(deployed)}:8000/v1" and doc["model"] == "qwen"
    (level,) = doc["levels"]
    assert (level["completed"], level["output_tokens"]) == (6, 18), level
    assert level["ttft_s"]["p50"] is not None and level["itl_s"]["p50"] is not None


def test_logs_show_serves_logs_on_every_node(deployed: Deployed) -> None:
    """logs NAME on a cluster: each node's Serve logs (controller on the head, a proxy and replicas on each node),
    every line prefixed with its node; NAME/rI one node's."""
    proc = run_cli("logs", NAME, "--tail", "3", env=deployed.env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for node in ("r1", "r2"):
        assert any(ln.startswith(f"[{node}] ==> ") and "/logs/serve/replica_" in ln for ln in lines), proc.stdout
    assert any(ln.startswith("[r1] ==> ") and "/logs/serve/controller_" in ln for ln in lines), proc.stdout
    one = run_cli("logs", f"{NAME}/r2", "--tail", "3", env=deployed.env)
    assert one.returncode == 0 and "/logs/serve/proxy_" in one.stdout and "controller_" not in one.stdout, one.stderr


def test_status_asks_the_head_for_rays_nodes_and_the_serve_app(deployed: Deployed) -> None:
    proc = run_cli("status", NAME, "--json", env=deployed.env)
    assert proc.returncode == 0, proc.stderr
    live = json.loads(proc.stdout)[0]["live"]
    ray = live["cluster"]
    assert ray["checked"] is True and ray["ok"] is True, ray
    assert ray["nodes"].startswith("2 of 2 Ray node(s) alive"), ray
    assert "application llm_app RUNNING" in ray["serve"], ray
    assert live["healthy"] == 2 and live["replicas"] == 2
    text = run_cli("status", NAME, env=deployed.env).stdout
    assert f"live {NAME} (Ray cluster):" in text and "app:     healthy" in text, text
    assert "a Ray node: the app's health is the cluster's" in text  # not "no engine recorded" per node
    assert f"cluster {NAME}: 2 of 2 healthy" in text, text  # its started nodes, while the app answers


def _state(d: Deployed) -> dict[str, object]:
    path = Path(d.env["ORCHESTRATOR_HOME"]) / "deployments" / f"{NAME}.json"
    data: dict[str, object] = json.loads(path.read_text())
    return data


def _gcs_and_raylets(ns: str) -> set[int]:
    """The PIDs of Ray's GCS and raylets in one namespace: a restart of Ray changes them."""
    pids = set()
    for pid in _netns_pids(ns):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm in ("gcs_server", "raylet"):
            pids.add(pid)
    return pids


def _complete(head: str, model: str = "qwen") -> httpx.Response:
    body = {"model": model, "prompt": "Hello", "max_tokens": 1}
    return httpx.post(f"http://{head}:8000/v1/completions", json=body, timeout=30.0, trust_env=False)


def test_deploy_again_on_a_running_cluster_converges_and_keeps_ray(deployed: Deployed) -> None:
    namespaces = [h.netns or "" for h in deployed.cloud.hosts]
    before = {ns: _gcs_and_raylets(ns) for ns in namespaces}
    assert all(before.values())
    proc = run_cli("deploy", str(deployed.config), env=deployed.env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    note = _state(deployed)["steps"]["ray-cluster"]["note"]  # type: ignore[index]
    assert "already running: r1, r2" in note, note
    assert f"  ray:      {note}" in proc.stdout  # the summary says what was already running
    serve = _state(deployed)["steps"]["ray-serve"]["note"]  # type: ignore[index]
    assert "already running with this config: re-applied, unchanged" in serve, serve
    assert {ns: _gcs_and_raylets(ns) for ns in namespaces} == before  # Ray was not restarted
    assert _complete(_head(deployed)).status_code == 200


def test_deploy_again_after_a_worker_lost_its_ray_starts_only_that_worker(deployed: Deployed) -> None:
    """A deploy that failed during the Ray step leaves the head up and the worker without Ray: deploy converges."""
    from mockcloud.hosts import terminate_pids

    by_ip = {h.ipv4: h.netns or "" for h in deployed.cloud.hosts}
    replicas = deployed.state["replicas"]
    assert isinstance(replicas, list)
    head_ns, worker_ns = (by_ip[r["server"]["ip"]] for r in replicas)  # r1 is the head
    head_before = _gcs_and_raylets(head_ns)
    terminate_pids([int(line.split()[0]) for line in _ray_pids(worker_ns)])
    deadline = time.monotonic() + 30
    while _gcs_and_raylets(worker_ns) and time.monotonic() < deadline:
        time.sleep(0.5)
    proc = run_cli("deploy", str(deployed.config), env=deployed.env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    note = _state(deployed)["steps"]["ray-cluster"]["note"]  # type: ignore[index]
    assert "already running: r1" in note and "started: r2" in note, note
    assert _gcs_and_raylets(head_ns) == head_before  # the head was kept
    assert _gcs_and_raylets(worker_ns)
    assert _complete(_head(deployed)).status_code == 200


def _changed_config(d: Deployed, engine: dict[str, object] | None = None, **cluster: object) -> Path:
    data = yaml.safe_load(d.config.read_text())
    data["cluster"].update(cluster)
    data["engine"].update(engine or {})
    path = d.config.with_name(f"{NAME}-changed.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_redeploy_refuses_a_new_node_set_or_ray_version_and_changes_nothing(deployed: Deployed) -> None:
    namespaces = [h.netns or "" for h in deployed.cloud.hosts]
    before = {ns: _gcs_and_raylets(ns) for ns in namespaces}
    proc = run_cli("redeploy", str(_changed_config(deployed, nodes=3)), env=deployed.env, timeout=300)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "the config asks for a cluster of 3 node(s), the deployed one has 2 (r1, r2)" in proc.stderr
    assert f"orchestrator teardown {NAME} --yes" in proc.stderr
    proc = run_cli("redeploy", str(_changed_config(deployed, ray_version="2.61.0")), env=deployed.env, timeout=300)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "has ray 2.60.0 installed, the config pins 2.61.0" in proc.stderr, proc.stderr[-3000:]
    assert {ns: _gcs_and_raylets(ns) for ns in namespaces} == before
    world = read_state(deployed.cloud.upctl_home)
    assert len(world.get("servers") or []) == 2


def test_redeploy_updates_the_serve_app_in_place_and_keeps_answering(deployed: Deployed) -> None:
    head = _head(deployed)
    namespaces = [h.netns or "" for h in deployed.cloud.hosts]
    before = {ns: _gcs_and_raylets(ns) for ns in namespaces}
    with asking_meanwhile(lambda: _complete(head).status_code) as codes:  # every 50 ms through the head
        proc = run_cli("redeploy", str(_changed_config(deployed, max_replicas=3)), env=deployed.env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert len(codes) > 10 and set(codes) == {200}, codes  # the endpoint answered throughout
    apps = httpx.get(f"http://{head}:8265/api/serve/applications/", timeout=10, trust_env=False).json()
    app = apps["applications"]["llm_app"]
    assert app["status"] == "RUNNING"
    autoscaling = app["deployments"]["LLMServer:qwen"]["deployment_config"]["autoscaling_config"]
    assert autoscaling["max_replicas"] == 3  # the running app has the new Serve config
    assert {ns: _gcs_and_raylets(ns) for ns in namespaces} == before  # Ray was kept on every node
    state = _state(deployed)
    assert "Ray kept on 2 node(s)" in state["steps"]["ray-cluster"]["note"]  # type: ignore[index]
    change = "updated in place: args.llm_configs[0].deployment_config.autoscaling_config.max_replicas: 2 -> 3"
    assert change in state["steps"]["ray-serve"]["note"]  # type: ignore[index]
    assert "  ray:      " in proc.stdout and change in proc.stdout  # the summary says both
    assert state["config"]["cluster"]["max_replicas"] == 3  # type: ignore[index]
    assert _complete(head).status_code == 200


def test_redeploy_with_another_served_name_serves_it_under_the_new_name(deployed: Deployed) -> None:
    head = _head(deployed)
    config = _changed_config(deployed, engine={"served_name": "qwen-b"})
    proc = run_cli("redeploy", str(config), env=deployed.env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert 'model_loading_config.model_id: "qwen" -> "qwen-b"' in proc.stdout
    models = httpx.get(f"http://{head}:8000/v1/models", timeout=10, trust_env=False).json()
    assert [m["id"] for m in models["data"]] == ["qwen-b"]
    assert _complete(head, "qwen-b").status_code == 200
    assert _complete(head, "qwen").status_code == 404


def test_deploy_with_another_raylet_port_restarts_ray_and_serves_again(deployed: Deployed) -> None:
    """The probe reads the running raylet's real argv: a changed `cluster.ports.node_manager` means `ray stop`
    and a new `ray start` on each node (each probe finds its own raylet on the old port)."""
    namespaces = [h.netns or "" for h in deployed.cloud.hosts]
    before = {ns: _gcs_and_raylets(ns) for ns in namespaces}
    config = _changed_config(deployed, ports={"node_manager": 8078})
    proc = run_cli("deploy", str(config), env=deployed.env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    note = _state(deployed)["steps"]["ray-cluster"]["note"]  # type: ignore[index]
    assert "restarted: r1 (Ray runs with other ports: node_manager_port 8077 (config 8078))" in note, note
    after = {ns: _gcs_and_raylets(ns) for ns in namespaces}
    assert all(after.values()) and all(not (after[ns] & before[ns]) for ns in namespaces)  # new Ray everywhere
    assert "(deployed)" in _state(deployed)["steps"]["ray-serve"]["note"]  # type: ignore[index]
    assert _complete(_head(deployed)).status_code == 200


def test_prometheus_scrapes_rays_targets(deployed: Deployed) -> None:
    if deployed.prom is None:
        pytest.skip("prometheus is not installed")
    publics = {f"{r['server']['ip']}:8080" for r in deployed.state["replicas"]}  # type: ignore[union-attr]
    up: set[str] = set()
    deadline = time.monotonic() + 60  # each target's first scrape comes at its own offset in the interval
    while not publics <= up and time.monotonic() < deadline:
        rows = deployed.prom.query(f'up{{job="orchestrator-{NAME}-ray"}}')
        up = {str(r["metric"]["instance"]) for r in rows if str(r["value"][1]) == "1"}  # type: ignore[index]
        time.sleep(0.5)
    assert publics <= up  # every node's metrics port (ray_*, ray_serve_*), scraped at its public address
    serve: list[dict[str, object]] = []
    deadline = time.monotonic() + 90  # Serve's metrics reach each node's exporter on Ray's own report period
    while not serve and time.monotonic() < deadline:
        serve = deployed.prom.query(f'{{job="orchestrator-{NAME}-ray", __name__=~"ray_serve_.*"}}')
        time.sleep(1.0)
    assert serve, "no ray_serve_* series scraped from the cluster"


def test_deploy_with_fewer_nodes_stops_ray_on_the_leaving_node_only_and_keeps_serving(deployed: Deployed) -> None:
    """`cluster.nodes: 2 -> 1`: r2 leaves Ray (`ray stop` in its own PID space) before its server is deleted; the
    head's GCS and raylet are kept, the head sees one node, Serve runs both replicas on it and answers."""
    by_ip = {h.ipv4: h.netns or "" for h in deployed.cloud.hosts}
    replicas = _state(deployed)["replicas"]
    assert isinstance(replicas, list)
    head_ns, worker_ns = (by_ip[r["server"]["ip"]] for r in replicas)
    head_before = _gcs_and_raylets(head_ns)
    assert head_before and _gcs_and_raylets(worker_ns)
    config = _changed_config(deployed, nodes=1, ports={"node_manager": 8078})  # the ports Ray runs with now
    proc = run_cli("deploy", str(config), env=deployed.env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "r2: removed (scaled down)" in proc.stdout, proc.stdout  # the summary
    left = proc.stderr.find("Ray stopped on 1 node(s) leaving the cluster (r2)")  # the progress lines
    assert 0 <= left < proc.stderr.find("and its storages deleted"), proc.stderr[-6000:]
    assert not _gcs_and_raylets(worker_ns)  # stopped, and its server deleted
    assert _gcs_and_raylets(head_ns) == head_before  # the head's Ray was not touched
    state = _state(deployed)
    assert [r["index"] for r in state["replicas"]] == [1]  # type: ignore[union-attr]
    assert len(read_state(deployed.cloud.upctl_home)["servers"]) == 1
    note = state["steps"]["ray-cluster"]["note"]  # type: ignore[index]
    assert "already running: r1" in note, note
    assert _complete(_head(deployed)).status_code == 200


def test_deploy_with_more_nodes_joins_a_new_worker_to_the_running_head(deployed: Deployed) -> None:
    """`cluster.nodes: 1 -> 2` on the running cluster: a new server on the private network, prepared, Ray started
    on it against the head's private address; the head's Ray and the Serve app are kept, the head sees two nodes."""
    replicas = _state(deployed)["replicas"]
    assert isinstance(replicas, list) and [r["index"] for r in replicas] == [1]  # after the scale-down above
    head_ip = str(replicas[0]["server"]["ip"])
    by_ip = {h.ipv4: h.netns or "" for h in deployed.cloud.hosts}
    head_ns = by_ip[head_ip]
    head_before = _gcs_and_raylets(head_ns)
    config = _changed_config(deployed, nodes=2, ports={"node_manager": 8078})
    proc = run_cli("deploy", str(config), env=deployed.env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    state = _state(deployed)
    replicas = state["replicas"]
    assert isinstance(replicas, list) and [r["index"] for r in replicas] == [1, 2]
    assert replicas[0]["server"]["ip"] == head_ip  # the head stays replica 1
    network = state["network"]
    assert isinstance(network, dict)
    world = read_state(deployed.cloud.upctl_home)
    assert len(world["servers"]) == 2 and len(world.get("networks") or []) == 1  # the new server, on the same net
    new_private = str(replicas[1]["server"]["private_ip"])
    assert new_private.startswith("10.60.0.") and new_private != replicas[0]["server"]["private_ip"]
    note = state["steps"]["ray-cluster"]["note"]  # type: ignore[index]
    assert "already running: r1" in note and "started: r2" in note, note
    assert _gcs_and_raylets(head_ns) == head_before  # the head's Ray was not restarted
    worker_ns = by_ip[str(replicas[1]["server"]["ip"])]
    assert _gcs_and_raylets(worker_ns)  # the new worker runs a raylet in its own namespace
    status = run_cli("status", NAME, "--json", env=deployed.env)
    assert status.returncode == 0, status.stderr
    ray = json.loads(status.stdout)[0]["live"]["cluster"]
    assert ray["nodes"].startswith("2 of 2 Ray node(s) alive"), ray  # the head counts the new node
    assert new_private in ray["nodes"], ray
    assert _complete(head_ip).status_code == 200


def test_teardown_leaves_no_server_network_or_ray_process(deployed: Deployed) -> None:
    by_ip = {h.ipv4: h.netns or "" for h in deployed.cloud.hosts}
    running = [by_ip[r["server"]["ip"]] for r in _state(deployed)["replicas"]]  # type: ignore[union-attr]
    assert running and all(_ray_pids(ns) for ns in running)  # each node's namespace really ran Ray
    namespaces = list(by_ip.values())
    proc = run_cli("teardown", NAME, "--yes", env=deployed.env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    world = read_state(deployed.cloud.upctl_home)
    assert not world.get("servers") and not world.get("networks")
    deadline = time.monotonic() + 30
    while any(_ray_pids(ns) for ns in namespaces) and time.monotonic() < deadline:
        time.sleep(1)
    assert {ns: _ray_pids(ns) for ns in namespaces} == {ns: [] for ns in namespaces}
    assert not (Path(deployed.env["ORCHESTRATOR_HOME"]) / "deployments" / f"{NAME}.json").exists()
