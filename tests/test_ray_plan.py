"""The Ray cluster plan as data: config validation, the exact `ray start` lines, the Serve config file, the
readiness verdicts and the discovery rewrite, on configs/vllm-ray-l40s.yaml and on Ray's recorded answers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from orchestrator.actions import Result
from orchestrator.config import load_config
from orchestrator.errors import ConfigError
from orchestrator.ray_cluster import (
    ClusterGen,
    RayCluster,
    RayClusterError,
    RayNode,
    bring_up,
    check_versions,
    parse_version,
    placeholder_nodes,
    tear_down,
)
from orchestrator.ray_converge import PROBE_PY, RAYLET_PORTS
from orchestrator.ray_serve import (
    app_config,
    config_changes,
    expect_nodes_alive,
    expect_serve_running,
    file_sd_path,
    parse_current,
    rewrite_discovery,
    scrape_discovery,
    serve_config,
    serve_down,
    serve_up,
)
from tests.conftest import REPO, run_cli

CONFIG = REPO / "configs" / "vllm-ray-l40s.yaml"
RECORDED = REPO / "tests" / "fixtures" / "recorded" / "ray"
HOSTS = json.loads((RECORDED / "hosts.json").read_text())  # the addresses the recording was made with

SERVE_YAML = """\
# written by orchestrator for deployment qwen-ray: Ray Serve LLM, `serve deploy` this file
proxy_location: EveryNode
http_options:
  host: 0.0.0.0
  port: 8000
applications:
- name: llm_app
  route_prefix: /
  import_path: ray.serve.llm:build_openai_app
  args:
    llm_configs:
    - model_loading_config:
        model_id: qwen-7b
        model_source: Qwen/Qwen2.5-7B-Instruct
      accelerator_type: L40S
      deployment_config:
        autoscaling_config:
          min_replicas: 1
          max_replicas: 2
      engine_kwargs:
        gpu_memory_utilization: 0.9
        max_model_len: 32768
        tensor_parallel_size: 1
"""

PROBE_SCRIPT = PROBE_PY.replace("@PORTS@", repr(list(RAYLET_PORTS)))
PORTS = (
    "--metrics-export-port=8080 --object-manager-port=8076 --node-manager-port=8077 "
    "--dashboard-agent-listen-port=52365 --min-worker-port=10002 --max-worker-port=10999 --disable-usage-stats "
    "--temp-dir=/tmp/ray > .orchestrator/qwen-ray/ray-start.log 2>&1 < /dev/null; rc=$?; "
    "tail -n 30 .orchestrator/qwen-ray/ray-start.log; exit $rc"
)
START = "mkdir -p .orchestrator/qwen-ray && chmod 700 .orchestrator/qwen-ray || exit 1; RAY_USAGE_STATS_ENABLED=0 "
LIVE = 'is it alive: remote: pgrep -u "$(id -u)" -x gcs_server > /dev/null'
LOGS = (
    "its log: remote: tail -n 40 .orchestrator/qwen-ray/ray-start.log /tmp/ray/session_latest/logs/gcs_server.err "
    "/tmp/ray/session_latest/logs/serve/controller_*.log 2>/dev/null"
)
LEFT = (
    'remote: pgrep -u "$(id -u)" -a -f \'[g]cs_server|[r]aylet|[r]ay::|[d]ashboard/(dashboard|agent)\\.py|'
    "[r]ay/_private/(log_monitor|monitor)' || true"
)


def PROBE(node: str, dashboard: int) -> list[str]:  # noqa: N802 - reads as the constant lines it makes
    return [
        f"[{node}] remote: mkdir -p .orchestrator/qwen-ray && chmod 700 .orchestrator/qwen-ray",
        f"[{node}] upload: .orchestrator/qwen-ray/ray-probe.py (mode 0644, {len(PROBE_SCRIPT)} bytes)",
        f'[{node}] remote: "$HOME"/ray-venv/bin/python .orchestrator/qwen-ray/ray-probe.py {dashboard}',
    ]


PLAN = [
    '[node1] remote: "$HOME"/ray-venv/bin/ray --version',
    '[node1] remote: python3 -m venv "$HOME"/ray-venv',
    "[node1] remote: \"$HOME\"/ray-venv/bin/pip install 'ray[llm]==2.60.0'",
    '[node1] remote: "$HOME"/ray-venv/bin/ray --version',
    '[node2] remote: "$HOME"/ray-venv/bin/ray --version',
    '[node2] remote: python3 -m venv "$HOME"/ray-venv',
    "[node2] remote: \"$HOME\"/ray-venv/bin/pip install 'ray[llm]==2.60.0'",
    '[node2] remote: "$HOME"/ray-venv/bin/ray --version',
    *PROBE("node1", 8265),
    f"[node1] remote: {START}AUTOSCALER_METRIC_PORT=44217 DASHBOARD_METRIC_PORT=44227 "
    '"$HOME"/ray-venv/bin/ray start --head --port=6379 --dashboard-host=0.0.0.0 --dashboard-port=8265 '
    f"'--node-ip-address=<node1.private_ip>' {PORTS}",
    *PROBE("node2", 0),
    f"[node2] remote: {START}\"$HOME\"/ray-venv/bin/ray start '--address=<node1.private_ip>:6379' "
    f"'--node-ip-address=<node2.private_ip>' {PORTS}",
    "[node1] http: GET http://<node1.ip>:8265/nodes?view=summary expect ray-nodes-alive 2, poll every 1s up to 120s;"
    f" while polling, {LIVE}; if it fails, {LOGS}",
    '[node1] remote: "$HOME"/ray-venv/bin/serve config -a http://127.0.0.1:8265 -n llm_app < /dev/null',
    "[node1] upload: .orchestrator/qwen-ray/serve.yaml (mode 0644, 632 bytes)",
    '[node1] remote: "$HOME"/ray-venv/bin/serve deploy -a http://127.0.0.1:8265 .orchestrator/qwen-ray/serve.yaml'
    " < /dev/null",
    "[node1] http: GET http://<node1.ip>:8265/api/serve/applications/ expect ray-serve-running llm_app, poll every 2s"
    f" up to 1800s; while polling, {LIVE}; if it fails, {LOGS}",
    "[node1] http: GET http://<node1.ip>:8000/v1/models expect openai-model qwen-7b, poll every 1s up to 60s; while"
    f" polling, {LIVE}",
    "[node1] http: POST http://<node1.ip>:8000/v1/completions expect openai-completion, poll every 2s up to 120s;"
    f" while polling, {LIVE}; if it fails, {LOGS}",
    "[node1] remote: cat /tmp/ray/prom_metrics_service_discovery.json",
    "[local] write: /prom/file_sd/orchestrator-qwen-ray-ray.json (mode 0644, 234 bytes)",
    '[node1] remote: "$HOME"/ray-venv/bin/serve shutdown -y -a http://127.0.0.1:8265 < /dev/null',
    '[node2] remote: "$HOME"/ray-venv/bin/ray stop',
    '[node1] remote: "$HOME"/ray-venv/bin/ray stop',
    f"[node1] {LEFT}",
    f"[node2] {LEFT}",
]


def _lines(gen: ClusterGen) -> list[str]:
    """A plan as a dry run shows it: every action answered 'unknown'."""
    lines: list[str] = []
    try:
        step = next(gen)
        while True:
            lines.append(step.describe())
            step = gen.send(Result.unknown())
    except StopIteration:
        return lines


def _cluster(nodes: list[RayNode] | None = None) -> RayCluster:
    return RayCluster(load_config(CONFIG), nodes or placeholder_nodes(2))


def _config(tmp_path: Path, cluster: str, engine: str = "kind: vllm\n  model: m") -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"name: ray-x\nengine:\n  {engine}\ncluster:\n{cluster}")
    return path


def _recorded_nodes() -> list[RayNode]:
    """The recording's nodes, with made-up public addresses: the rewrite must swap every private one."""
    return [RayNode("h1", HOSTS["h1"], "198.51.100.10"), RayNode("h2", HOSTS["h2"], "198.51.100.11")]


def _response(path: str, text: str | None = None, status: int = 200) -> httpx.Response:
    return httpx.Response(status, text=text if text is not None else (RECORDED / path).read_text())


# -- config ---------------------------------------------------------------------------------------------------


def test_shipped_ray_config_validates_and_deploy_plans_the_whole_cluster_offline() -> None:
    cfg = load_config(CONFIG)
    assert cfg.cluster is not None
    assert (cfg.cluster.nodes, cfg.cluster.ray_version, cfg.cluster.ports.gcs) == (2, "2.60.0", 6379)
    assert run_cli("validate", str(CONFIG)).returncode == 0
    dry = run_cli("deploy", str(CONFIG), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout
    network = out.index("upctl network create --name qwen-ray-ray --zone fi-hel2 --ip-network address=10.60.0.0/24")
    creates = [out.index(f"upctl server create --hostname {h} ") for h in ("qwen-ray", "qwen-ray-2")]
    assert network < min(creates)  # the network first: both servers are created attached to it
    assert out.count("--network 'type=private,network=<network.uuid>'") == 2
    head = out.index("ray start --head --port=6379")
    worker = out.index("[r2] remote: mkdir -p .orchestrator/qwen-ray")
    assert max(creates) < head < worker
    assert "ray start '--address=<r1.private_ip>:6379' '--node-ip-address=<r2.private_ip>'" in out
    assert "import_path: ray.serve.llm:build_openai_app" in out  # the Serve config itself
    for check in ("/api/serve/applications/ expect ray-serve-running llm_app", "/v1/completions expect"):
        assert check in out
    assert "cat /tmp/ray/prom_metrics_service_discovery.json" in out
    # the single-server engine's steps do not run on a cluster's nodes: the Ray app is the engine
    for kind in ("install-stack", "start-engine", "] health"):
        assert kind not in out


@pytest.mark.parametrize(
    ("cluster", "engine", "message"),
    [
        ("  min_replicas: 3\n  max_replicas: 2\n", "kind: vllm\n  model: m", "min_replicas (3) must not exceed"),
        ("  ports: {min_worker: 11000, max_worker: 10000}\n", "kind: vllm\n  model: m", "must not exceed max_worker"),
        ("  ports: {dashboard: 6379}\n", "kind: vllm\n  model: m", "are both port 6379"),
        ("  ports: {metrics_export: 10500}\n", "kind: vllm\n  model: m", "inside the worker port range"),
        ("  ray_version: latest\n", "kind: vllm\n  model: m", "exact Ray release"),
        ("  engine_kwargs: {Max-Len: 3}\n", "kind: vllm\n  model: m", "snake_case"),
        ("  kind: ray\n", "kind: vllm\n  model: m\n  extra_args: [--enforce-eager]", "cluster.engine_kwargs"),
        ("  kind: ray\n", "kind: tfserving\n  saved_model: /m", "serves vLLM only"),
        ("  kind: kubernetes\n", "kind: vllm\n  model: m", "'ray'"),
    ],
)
def test_cluster_validation(tmp_path: Path, cluster: str, engine: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, cluster, engine), check_files=False)
    assert message in err.value.message, err.value.message


# -- the plan -------------------------------------------------------------------------------------------------


def test_serve_config_file_for_the_shipped_config() -> None:
    assert serve_config(_cluster()) == SERVE_YAML


def test_the_whole_cluster_plan_offline() -> None:
    ray = _cluster()
    dest = file_sd_path(Path("/prom/prometheus.yml"), "qwen-ray")
    lines = []
    for gen in (bring_up(ray), serve_up(ray), scrape_discovery(ray, dest), serve_down(ray), tear_down(ray)):
        lines += _lines(gen)
    assert lines == PLAN


def test_worker_joins_the_head_private_address_and_each_node_names_its_own() -> None:
    ray = _cluster([RayNode("a", "10.0.0.2", "203.0.113.2"), RayNode("b", "10.0.0.3", "203.0.113.3")])
    assert ray.head_argv()[:2] == ["start", "--head"]
    worker = ray.worker_argv(ray.workers[0])
    assert worker[:3] == ["start", "--address=10.0.0.2:6379", "--node-ip-address=10.0.0.3"]
    assert ray.dashboard_url() == "http://203.0.113.2:8265"  # the laptop reaches the head's public address


def test_installed_ray_skips_pip_and_import_path_is_configurable(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "  install: none\n  import_path: mockcloud.ray_standin:build_app\n"))
    ray = RayCluster(cfg, placeholder_nodes(1))
    assert [line for line in _lines(bring_up(ray)) if "pip install" in line or "-m venv" in line] == []
    assert "import_path: mockcloud.ray_standin:build_app" in serve_config(ray)


def test_serve_config_changes_name_each_changed_leaf() -> None:
    ray = _cluster()
    ours = app_config(ray)
    running = json.loads(json.dumps(ours))
    running["runtime_env"] = {}  # Serve's own additions do not count
    assert config_changes(running, ours) == []
    running["args"]["llm_configs"][0]["deployment_config"]["autoscaling_config"]["max_replicas"] = 1
    running["args"]["llm_configs"][0]["model_loading_config"]["model_id"] = "old"
    assert config_changes(running, ours) == [
        'args.llm_configs[0].model_loading_config.model_id: "old" -> "qwen-7b"',
        "args.llm_configs[0].deployment_config.autoscaling_config.max_replicas: 1 -> 2",
    ]
    assert parse_current('No config has been deployed for application "llm_app".\n') is None
    assert parse_current(serve_config(ray).split("applications:\n- ")[1].replace("\n  ", "\n")) == ours


# -- versions ---------------------------------------------------------------------------------------------------


def test_version_parsed_from_the_recorded_output() -> None:
    recorded = (RECORDED / "ray-version.txt").read_text()
    assert parse_version(recorded) == "2.60.0"
    assert check_versions({"node1": recorded, "node2": recorded}, "2.60.0") == "ray 2.60.0 on 2 node(s)"


def test_version_mismatch_names_each_wrong_node() -> None:
    recorded = (RECORDED / "ray-version.txt").read_text()
    older = recorded.replace("2.60.0", "2.49.1")
    missing = "bash: line 1: /root/ray-venv/bin/ray: No such file or directory\n"
    with pytest.raises(RayClusterError) as err:
        check_versions({"node1": recorded, "node2": older, "node3": missing}, "2.60.0")
    assert err.value.message == (
        "Ray versions differ: the cluster needs ray 2.60.0 on every node "
        "(node2: 2.49.1, node3: no ray --version answer)"
    )
    assert "cluster.install: pip" in (err.value.hint or "")


def test_bring_up_stops_before_starting_anything_on_a_version_mismatch(tmp_path: Path) -> None:
    ray = RayCluster(load_config(_config(tmp_path, "  install: none\n")), placeholder_nodes(2))
    gen = bring_up(ray)
    seen = [next(gen).describe()]
    seen.append(gen.send(Result(stdout="ray, version 2.60.0\n")).describe())
    with pytest.raises(RayClusterError):
        gen.send(Result(stdout="ray, version 2.59.0\n"))
    assert all("ray start" not in line for line in seen)


# -- readiness verdicts on Ray's recorded answers --------------------------------------------------------------


def test_serve_running_on_the_recorded_answer() -> None:
    verdict = expect_serve_running(_response("serve-applications.json"), "llm_app")
    assert verdict.ready
    assert verdict.detail == "application llm_app RUNNING (LLMServer:qwen HEALTHY, OpenAiIngress HEALTHY)"
    assert not expect_serve_running(_response("serve-applications.json"), "other_app").ready


def test_serve_not_ready_while_deploying_and_fatal_when_failed() -> None:
    doc = json.loads((RECORDED / "serve-applications.json").read_text())
    app = doc["applications"]["llm_app"]
    app["status"] = "DEPLOYING"
    app["deployments"]["LLMServer:qwen"]["status"] = "UPDATING"
    verdict = expect_serve_running(_response("", json.dumps(doc)), "llm_app")
    assert (verdict.ready, verdict.fatal) == (False, False)
    assert "LLMServer:qwen UPDATING" in verdict.detail
    app["status"], app["message"] = "DEPLOY_FAILED", "ImportError: no module named vllm"
    verdict = expect_serve_running(_response("", json.dumps(doc)), "llm_app")
    assert verdict.fatal and "ImportError" in verdict.detail
    assert not expect_serve_running(_response("", "", 503), "llm_app").ready


def test_nodes_alive_on_the_recorded_answer() -> None:
    assert expect_nodes_alive(_response("nodes-summary.json"), "2").ready
    verdict = expect_nodes_alive(_response("nodes-summary.json"), "3")
    assert not verdict.ready
    assert verdict.detail == f"2 of 3 Ray node(s) alive ({HOSTS['h1']}, {HOSTS['h2']})"


# -- metrics: the discovery file ---------------------------------------------------------------------------------


def test_discovery_file_rewritten_to_public_addresses() -> None:
    text = (RECORDED / "prom_metrics_service_discovery.json").read_text()
    doc = json.loads(rewrite_discovery(text, _cluster(_recorded_nodes())))
    assert doc == [
        {
            "labels": {
                "deployment": "qwen-ray",
                "engine": "vllm-ray",
                "job": "orchestrator-qwen-ray-ray",
                "model": "qwen-7b",
            },
            "targets": ["198.51.100.10:44217", "198.51.100.10:44227", "198.51.100.10:8080", "198.51.100.11:8080"],
        }
    ]


def test_discovery_file_with_a_stranger_or_nothing_is_refused() -> None:
    text = (RECORDED / "prom_metrics_service_discovery.json").read_text()
    only_head = _cluster(_recorded_nodes()[:1])
    with pytest.raises(RayClusterError, match=f"not nodes of this cluster: {HOSTS['h2']}:8080"):
        rewrite_discovery(text, only_head)
    with pytest.raises(RayClusterError, match="lists no metrics targets"):
        rewrite_discovery('[{"labels": {"job": "ray"}, "targets": []}]', only_head)
    with pytest.raises(RayClusterError, match="is not JSON"):
        rewrite_discovery("", only_head)


def test_discovery_read_again_while_it_still_names_a_node_that_left(tmp_path: Path) -> None:
    """After a scale-down Ray's file names the leaving node until Ray has noticed it gone: the plan reads it again
    (a pause between) instead of failing on the stranger, and writes the head's targets once the file has only
    them."""
    from orchestrator.actions import Pause, Remote, WriteLocal

    recorded = (RECORDED / "prom_metrics_service_discovery.json").read_text()
    groups = json.loads(recorded)
    for group in groups:
        group["targets"] = [t for t in group["targets"] if not t.startswith(HOSTS["h2"] + ":")]
    answers = [recorded, json.dumps(groups)]
    gen = scrape_discovery(_cluster(_recorded_nodes()[:1]), tmp_path / "ray.json")
    seen = []
    try:
        step = next(gen)
        while True:
            seen.append(step.action)
            reply = Result(rc=0, stdout=answers.pop(0)) if isinstance(step.action, Remote) else Result()
            step = gen.send(reply)
    except StopIteration as stop:
        note = stop.value
    kinds = [type(a).__name__ for a in seen]
    assert kinds == ["Remote", "Pause", "Remote", "WriteLocal"], kinds
    assert isinstance(seen[1], Pause) and isinstance(seen[3], WriteLocal) and not answers
    targets = json.loads(seen[3].content)[0]["targets"]
    assert targets == ["198.51.100.10:44217", "198.51.100.10:44227", "198.51.100.10:8080"], targets
    assert note.startswith("3 Ray metrics target(s)")


# -- the cluster's firewall (steps/firewall.py) ---------------------------------------------------------------


def test_cluster_firewall_opens_no_ray_port_on_the_public_side() -> None:
    """UpCloud's firewall filters the public and utility interfaces only: Ray's ports are never accepted there
    (the nodes talk on the private network, which the firewall does not see); the laptop reaches what it needs."""
    from orchestrator.steps.firewall import EPHEMERAL, cluster_ports, rules_for
    from tests.test_firewall_rules import verdict

    cfg = load_config(CONFIG, check_files=False)
    assert cfg.ssh.port == 22
    rules = rules_for(cfg, ["198.51.100.7/32"])
    accepts = {r.source for r in rules if r.action == "accept" and r.source}
    assert accepts == {"198.51.100.7/32"}  # no rule for the private network: it is not behind this firewall
    laptop = {22, 8000, 8080, 8265, 44217, 44227}  # SSH, Serve, the dashboard, the metrics ports it scrapes
    ray = set(cluster_ports(cfg))
    assert {6379, 8076, 8077, 52365, 10002, 10999} <= ray
    for port in sorted(ray | laptop):
        for src in ("198.51.100.7", "203.0.113.50", "10.60.0.9"):  # the laptop, anyone, a private source
            for sport in (None, 53, 123, 443):
                got = verdict(rules, src, "tcp", sport, port)
                want = "accept" if src == "198.51.100.7" and port in laptop else "drop"
                assert got == want, (src, port, sport)
                assert verdict(rules, src, "udp", sport, port) == "drop", (src, port, sport)
    # the explicit TCP drops are exactly the protected ports inside the ephemeral range (the agent, the metrics)
    tcp_drops = {
        p
        for r in rules
        if r.action == "drop" and r.protocol == "tcp" and r.dest_ports
        for p in range(r.dest_ports[0], r.dest_ports[1] + 1)
    }
    assert tcp_drops == {p for p in ray | laptop if EPHEMERAL[0] <= p <= EPHEMERAL[1]}
    assert len(rules) == 41  # one node's rules, each an API call (64 with private-network accepts and all TCP drops)
