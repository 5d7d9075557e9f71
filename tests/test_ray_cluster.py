"""A real two-node Ray cluster on mock hosts: the production plan over SSH, a stand-in app, every node checked.

Two mock hosts, each in its own network namespace on one bridge (real sshd, mockcloud/hosts.py), with real Ray
(`ray[serve]` from the dev extras) in the venv the plan expects. The orchestrator's own plan runs on them through
the LiveExecutor, one SSH session per node: the version check, the same `ray start` lines (each node's
--node-ip-address is its namespace address), the same Serve config file and readiness checks; only the Serve
import path differs (mockcloud.ray_standin, since Ray Serve LLM needs vLLM and a GPU).

Each host has its own PID space (own_pids: `ray stop` and the plan's probes on one node see only that node's
processes, as on separate machines) but they share one filesystem: each node gets its own --temp-dir (a relative
cluster.temp_dir is under each host's home). The teardown check looks inside each network namespace (`ip netns
pids`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from mockcloud.hosts import MockHost, MockHosts, new_root
from mockcloud.ray_venv import seed_ray_venv
from orchestrator.actions import Connect
from orchestrator.config import DeploymentConfig, load_config
from orchestrator.ray_cluster import ClusterGen, RayCluster, RayNode, bring_up, tear_down
from orchestrator.ray_serve import endpoint, file_sd_path, scrape_discovery, serve_down, serve_up
from orchestrator.transports.live import LiveExecutor

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.ray,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="network namespaces need root"),
]

CONFIG = """\
name: ray-mock
ssh:
  user: {user}
  private_key: {key}
engine:
  kind: vllm
  model: Qwen/Qwen2.5-0.5B-Instruct
  served_name: qwen
  max_model_len: 2048
cluster:
  kind: ray
  nodes: 2
  install: none                     # the mock hosts' venv already has this machine's Ray (mockcloud/ray_venv.py)
  temp_dir: ray                     # relative: under each host's home (the mock hosts share one /tmp)
  import_path: mockcloud.ray_standin:build_app
  min_replicas: 2
  max_replicas: 2
  ready_timeout: 5m
monitoring:
  prometheus_config: {prom}
"""


@dataclass
class Memory:
    """Peak resident memory of everything in each host's namespace (sampled every second)."""

    namespaces: list[str]
    peak_mib: dict[str, float] = field(default_factory=dict)
    peak_total_mib: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(1.0):
            per = {ns: _rss_mib(_netns_pids(ns)) for ns in self.namespaces}
            for ns, mib in per.items():
                self.peak_mib[ns] = max(self.peak_mib.get(ns, 0.0), mib)
            self.peak_total_mib = max(self.peak_total_mib, sum(per.values()))


@dataclass
class Cluster:
    cfg: DeploymentConfig
    ray: RayCluster
    hosts: list[MockHost]
    executors: dict[str, LiveExecutor]
    root: Path
    notes: dict[str, str] = field(default_factory=dict)
    torn_down: bool = False


def _netns_pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


RAY_PROCESS = re.compile(r"gcs_server|raylet|ray::|(site-packages|ray-site)/ray/|/bin/(ray|serve)\b")


def _ray_pids(ns: str) -> list[tuple[int, str]]:
    """Ray's processes in a network namespace (Ray's binaries, its python modules, `ray::` workers)."""
    found = [(pid, _cmdline(pid)) for pid in _netns_pids(ns)]
    return [(pid, cmd) for pid, cmd in found if RAY_PROCESS.search(cmd) and not cmd.startswith("sshd")]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def drive(gen: ClusterGen, executors: Mapping[str, LiveExecutor]) -> str | None:
    """Run a cluster plan: each action on its node's executor (a local one on the first's)."""
    local = next(iter(executors.values()))
    try:
        step = next(gen)
        while True:
            executor = executors[step.node] if step.node is not None else local
            step = gen.send(executor.execute(step.action))
    except StopIteration as stop:
        return stop.value if isinstance(stop.value, str) else None
    finally:
        gen.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    started = time.monotonic()
    root = new_root("mcray-")  # short: Ray's socket paths live under each host's home (108-byte limit)
    mock = MockHosts(root, 2, mode="netns", own_pids=True)
    memory: Memory | None = None
    executors: dict[str, LiveExecutor] = {}
    state: Cluster | None = None
    try:
        hosts = mock.start()
        key = root / "client_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        for host in hosts:
            host.authorized_keys.write_text((root / "client_key.pub").read_text())
            seed_ray_venv(host.home, mock.host_python, host.user, shared=root)
        (root / "prom").mkdir()
        cfg_file = root / "ray-mock.yaml"
        cfg_file.write_text(CONFIG.format(user=hosts[0].user, key=key, prom=root / "prom" / "prometheus.yml"))
        cfg = load_config(cfg_file)
        nodes = [RayNode(h.name, h.ipv4, h.ipv4) for h in hosts]
        ray = RayCluster(cfg, nodes)
        memory = Memory([h.netns for h in hosts if h.netns])
        threading.Thread(target=memory.run, daemon=True).start()
        for host in hosts:
            executors[host.name] = LiveExecutor({})
            executors[host.name].execute(
                Connect(host.ipv4, host.ssh_port, host.user, str(key), host.host_key_pub, deadline=30.0)
            )
        state = Cluster(cfg, ray, hosts, executors, root)
        t0 = time.monotonic()
        state.notes["bring_up"] = drive(bring_up(ray), executors) or ""
        t1 = time.monotonic()
        state.notes["serve_up"] = drive(serve_up(ray), executors) or ""
        state.notes["timing"] = f"ray start {t1 - t0:.1f}s, serve ready {time.monotonic() - t1:.1f}s"
        if os.environ.get("RAY_RECORD_DIR"):
            _record(state, Path(os.environ["RAY_RECORD_DIR"]))
        yield state
    finally:
        try:
            if state is not None and not state.torn_down:
                for plan in (serve_down, tear_down):
                    try:
                        drive(plan(state.ray), executors)
                    except Exception as exc:  # the hosts' stop below still kills every process by PID
                        print(f"ray teardown in the fixture failed: {exc}")
            for executor in executors.values():
                executor.close()
        finally:
            if memory is not None:
                memory.stop.set()
            mock.stop()  # every process in each namespace, by PID, then the namespaces and the bridge
            shutil.rmtree(root, ignore_errors=True)
            if memory is not None:
                peaks = ", ".join(f"{ns} {mib:.0f} MiB" for ns, mib in sorted(memory.peak_mib.items()))
                wall = time.monotonic() - started
                timing = state.notes.get("timing", "") if state else ""
                print(
                    f"\nray cluster module: {wall:.1f}s wall, peak RSS {memory.peak_total_mib:.0f} MiB in all "
                    f"({peaks}); {timing}"
                )


def _record(state: Cluster, out: Path) -> None:
    """Save Ray's real answers as parser fixtures (tests/fixtures/recorded/ray/); RAY_RECORD_DIR=DIR turns it on."""
    from orchestrator.ray_serve import discovery_read

    out.mkdir(parents=True, exist_ok=True)
    head = state.executors[state.hosts[0].name]
    (out / "ray-version.txt").write_text(head.execute(state.ray.version_probe()).stdout)
    time.sleep(6)  # the discovery writer runs every 5 s
    (out / "prom_metrics_service_discovery.json").write_text(head.execute(discovery_read(state.ray)).stdout)
    for name, path in (
        ("serve-applications.json", "/api/serve/applications/"),
        ("nodes-summary.json", "/nodes?view=summary"),
    ):
        (out / name).write_text(_get(state.ray.dashboard_url() + path).text)
    (out / "hosts.json").write_text(json.dumps({h.name: h.ipv4 for h in state.hosts}))


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10.0, trust_env=False)


def test_both_nodes_alive_with_one_ray_version(cluster: Cluster) -> None:
    assert cluster.notes["bring_up"].startswith("ray 2.60.0 on 2 node(s)")
    body = _get(f"{cluster.ray.dashboard_url()}/nodes?view=summary").json()
    alive = {row["ip"] for row in body["data"]["summary"] if row["raylet"]["state"] == "ALIVE"}
    assert alive == {h.ipv4 for h in cluster.hosts}
    head = [row for row in body["data"]["summary"] if row["raylet"].get("isHeadNode")]
    assert [row["ip"] for row in head] == [cluster.hosts[0].ipv4]


def test_serve_reports_running(cluster: Cluster) -> None:
    body = _get(f"{cluster.ray.dashboard_url()}/api/serve/applications/").json()
    app = body["applications"]["llm_app"]
    assert app["status"] == "RUNNING"
    assert {name: d["status"] for name, d in app["deployments"].items()} == {
        "OpenAiIngress": "HEALTHY",
        "LLMServer:qwen": "HEALTHY",
    }
    models = _get(f"{endpoint(cluster.ray)}/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["qwen"]
    assert models["data"][0]["metadata"]["engine_kwargs"]["max_model_len"] == 2048


def test_requests_through_the_head_reach_replicas_on_both_nodes(cluster: Cluster) -> None:
    url = f"{endpoint(cluster.ray)}/v1/completions"
    body = {"model": "qwen", "prompt": "Hello", "max_tokens": 1}

    def ask(_: int) -> dict[str, str]:
        resp = httpx.post(url, json=body, timeout=30.0, trust_env=False)
        assert resp.status_code == 200, resp.text
        served: dict[str, str] = resp.json()["served_by"]
        return served

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, range(40)))
    assert {a["node_ip"] for a in answers} == {h.ipv4 for h in cluster.hosts}
    assert {a["mock_host"] for a in answers} == {h.name for h in cluster.hosts}
    assert len({a["node_id"] for a in answers}) == 2


def test_discovery_file_lists_both_nodes_and_each_answers_prometheus_text(cluster: Cluster) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    dest = file_sd_path(cluster.root / "prom" / "prometheus.yml", cluster.cfg.name)
    drive(scrape_discovery(cluster.ray, dest), cluster.executors)
    groups = json.loads(dest.read_text())
    assert len(groups) == 1
    assert groups[0]["labels"] == {
        "job": "orchestrator-ray-mock-ray",
        "deployment": "ray-mock",
        "engine": "vllm-ray",
        "model": "qwen",
    }
    head = cluster.hosts[0].ipv4  # every node's metrics port, and the head's autoscaler and dashboard metrics
    want = [f"{h.ipv4}:8080" for h in cluster.hosts] + [f"{head}:44217", f"{head}:44227"]
    assert sorted(groups[0]["targets"]) == sorted(want)
    for target in groups[0]["targets"]:
        text = _get(f"http://{target}/metrics").text
        names = {f.name for f in text_string_to_metric_families(text)}
        prefix = "ray_" if target.endswith(":8080") else ""  # the head's autoscaler exports autoscaler_*
        assert any(n.startswith(prefix) for n in names), (target, sorted(names)[:20])
    # Serve's metrics reach a node's endpoint on Ray's export interval, from the node that hosts the replica or
    # proxy: poll both nodes, bounded.
    serve = ("ray_serve_num_http_requests", "ray_serve_deployment_replica_healthy")
    node_targets = [t for t in groups[0]["targets"] if t.endswith(":8080")]
    seen: set[str] = set()
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        for target in node_targets:
            seen |= {f.name for f in text_string_to_metric_families(_get(f"http://{target}/metrics").text)}
        if any(name in seen for name in serve):
            break
        time.sleep(2.0)
    assert any(name in seen for name in serve), sorted(n for n in seen if n.startswith("ray_serve"))
    promtool = shutil.which("promtool")
    if promtool:
        prom = cluster.root / "prom" / "prometheus.yml"
        prom.write_text(
            "scrape_configs:\n  - job_name: orchestrator-ray-mock-ray\n    file_sd_configs:\n"
            f"      - files: [{json.dumps(str(dest))}]\n"
        )
        check = subprocess.run([promtool, "check", "config", str(prom)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_teardown_leaves_no_ray_process_in_any_namespace(cluster: Cluster) -> None:
    ray_pids_before = {h.name: _ray_pids(h.netns or "") for h in cluster.hosts}
    assert all(ray_pids_before.values()), ray_pids_before  # each namespace really ran Ray
    cluster.torn_down = True
    assert drive(serve_down(cluster.ray), cluster.executors) == "Serve shut down"
    assert drive(tear_down(cluster.ray), cluster.executors) == "Ray stopped on 2 node(s)"
    # What `ray stop` does not kill itself goes on its own: the dashboard's multiprocessing forkserver exits when
    # its parent's pipe closes (seen still there right after `ray stop` under load), so wait for it, bounded.
    deadline = time.monotonic() + 30
    left = {h.name: _ray_pids(h.netns or "") for h in cluster.hosts}
    while any(left.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
        left = {h.name: _ray_pids(h.netns or "") for h in cluster.hosts}
    assert left == {h.name: [] for h in cluster.hosts}
