"""`orchestrator bench`: figures computed as `vllm bench serve` does, checked against the mock engine's delays."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mockcloud.hosts import DEFAULT_KNOBS, write_knobs
from mockcloud.prometheus import free_port
from orchestrator import bench
from tests.conftest import REPO, SERVED, Served, run_cli

TTFT = 0.4  # large enough that scheduling jitter on a busy 2-core machine stays well inside 10 %
PER_TOKEN = 0.05
KEY = "sk-bench-planted-key-3c1d"


def within(value: float | None, expected: float, tolerance: float = 0.10) -> bool:
    return value is not None and abs(value - expected) <= tolerance * expected


# ---------------------------------------------------------------- the arithmetic


def test_percentile_is_numpys_linear_interpolation() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert [bench.percentile(values, q) for q in (0, 50, 95, 99, 100)] == pytest.approx([1.0, 2.5, 3.85, 3.97, 4.0])
    assert bench.percentile([7.0], 99) == 7.0


def test_summary_follows_vllm_definitions_and_prices_a_million_tokens() -> None:
    results = [
        bench.RequestResult(ok=True, ttft=0.5, itl=[0.1, 0.1, 0.3], latency=1.0, output_tokens=4),
        bench.RequestResult(ok=True, ttft=0.3, itl=[0.2], latency=0.5, output_tokens=2),
        bench.RequestResult(ok=False, error="HTTP 401: Unauthorized"),
    ]
    s = bench.summarize(results, duration=2.0, concurrency=2)
    assert (s["completed"], s["failed"], s["errors"]) == (2, 1, ["HTTP 401: Unauthorized"])
    assert s["request_throughput"] == 1.0 and s["output_tokens_per_s"] == 3.0
    # TPOT per request: (e2e - ttft) / (tokens - 1) = 0.5/3 and 0.2/1; ITL pools every gap of every request.
    assert s["tpot_s"]["mean"] == pytest.approx((0.5 / 3 + 0.2) / 2)
    assert s["itl_s"]["p50"] == pytest.approx(0.15) and s["ttft_s"]["p50"] == pytest.approx(0.4)
    # 1.92 per hour at 3 tokens/s: 10800 tokens an hour, so 1M tokens cost 1.92 * 1e6 / 10800.
    assert bench.cost_per_million(3.0, 1.92) == pytest.approx(177.777, rel=1e-4)
    assert bench.cost_per_million(3.0, None) is None


# ---------------------------------------------------------------- against the mock engine on loopback


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("bench-engine")
    (home / "run" / "pids").mkdir(parents=True)
    write_knobs(home / "knobs.json", DEFAULT_KNOBS | {"engine_startup_delay": 0.1})
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "MOCKHOST_HOME": str(home),
        "VLLM_API_KEY": KEY,
    }
    with open(home / "engine.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mockcloud.engine", "serve", "m", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, (home / "engine.log").read_text()
            time.sleep(0.1)
        # The delays are read per request: set after start-up, as a test on a deployed host does.
        write_knobs(home / "knobs.json", DEFAULT_KNOBS | {"engine_ttft": TTFT, "engine_token_delay": PER_TOKEN})
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)


def test_mock_engine_streams_with_usage_like_vllm(engine: str) -> None:
    body = bench.payload("m", 3, 20)
    with httpx.stream(
        "POST", f"{engine}/v1/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=10
    ) as resp:
        events = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    # ignore_eos: exactly max_tokens tokens, past the end of the canned reply; then the finish, then usage alone.
    assert sum(1 for c in chunks if c["choices"] and c["choices"][0]["text"]) == 20
    assert all(c["usage"] is None for c in chunks[:-1]) and chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 20, "total_tokens": 23}
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


def test_figures_match_the_configured_delays_at_each_level(engine: str) -> None:
    levels = bench.run(
        [f"{engine}/v1"], "m", KEY, levels=[1, 4], requests=8, input_tokens=5, output_tokens=10, timeout=60,
        price_per_hour=2.0,
    )
    assert [lv["concurrency"] for lv in levels] == [1, 4]
    for lv in levels:
        assert (lv["completed"], lv["output_tokens"]) == (8, 80), lv["errors"]
        assert within(lv["ttft_s"]["p50"], TTFT), lv["ttft_s"]
        assert within(lv["itl_s"]["p50"], PER_TOKEN), lv["itl_s"]
        assert within(lv["tpot_s"]["p50"], PER_TOKEN), lv["tpot_s"]
        assert within(lv["e2e_latency_s"]["p50"], TTFT + 9 * PER_TOKEN), lv["e2e_latency_s"]
        assert lv["cost_per_1m_output_tokens"] == pytest.approx(2.0 / (lv["output_tokens_per_s"] * 3600) * 1e6)
    # Four at a time: about four times the output tokens per second of one at a time.
    assert levels[1]["output_tokens_per_s"] > 2.5 * levels[0]["output_tokens_per_s"]


def test_wrong_key_fails_every_request_with_the_reason(engine: str) -> None:
    (lv,) = bench.run([f"{engine}/v1"], "m", "wrong", levels=[2], requests=3, input_tokens=1, output_tokens=2,
                      timeout=10)  # fmt: skip
    assert (lv["completed"], lv["failed"]) == (0, 3)
    assert lv["errors"] and lv["errors"][0].startswith("HTTP 401")


def _fleet_record(home: Path, engine: str, statuses: list[str]) -> None:
    """A fleet `bench` reads from state: replica I at `endpoint` I (each a distinct URL of the one loopback
    engine: 127.0.0.1, localhost, ...), with the given statuses; 1.5 EUR/h per server."""
    from orchestrator.config import DeploymentConfig
    from orchestrator.state import Deployment, EngineRecord, ReplicaRecord, ServerRecord, StateStore

    port = int(engine.rsplit(":", 1)[1])
    cfg = DeploymentConfig.model_validate(
        {"name": "fl", "replicas": len(statuses), "provider": {"price_per_hour": 1.5},
         "engine": {"kind": "vllm", "model": "m", "served_name": "m", "port": port}}
    )  # fmt: skip
    hosts = ["127.0.0.1", "localhost", "127.0.0.2"]
    replicas = [
        ReplicaRecord(
            index=i, status=status,
            server=ServerRecord(uuid=f"00f{i}", plan="GPU-8xCPU-64GB-1xL40S", zone="fi-hel2", ip=hosts[i - 1]),
            engine=EngineRecord(kind="vllm", model="m", served_name="m", endpoint=f"http://{hosts[i - 1]}:{port}/v1",
                                metrics_url=f"http://{hosts[i - 1]}:{port}/metrics", method="pip"),
        )
        for i, status in enumerate(statuses, start=1)
    ]  # fmt: skip
    dep = Deployment(name="fl", config_path="/x.yaml", status="deployed", replicas=replicas,
                     config=cfg.model_dump(mode="json"))  # fmt: skip
    StateStore(home).save(dep)


def test_a_fleet_is_benched_across_its_serving_replicas(engine: str, tmp_path: Path) -> None:
    """bench NAME on a fleet: the requests go round-robin to every replica that serves (one that does not is
    named and left out), the concurrency is the fleet's, and a million tokens cost every benched server's hours;
    NAME/rI benches that replica alone; a fleet with none serving is refused (exit 11)."""
    home = tmp_path / "home"
    _fleet_record(home, engine, ["deployed", "deployed", "failed"])
    env = {"ORCHESTRATOR_HOME": str(home), "VLLM_API_KEY": KEY}
    args = ["--json", "--concurrency", "2", "--requests", "6", "--input-tokens", "1", "--output-tokens", "2"]
    proc = run_cli("bench", "fl", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "not benched (not serving): fl/r3 (failed)" in proc.stderr
    doc = json.loads(proc.stdout)
    port = engine.rsplit(":", 1)[1]
    both = [f"http://127.0.0.1:{port}/v1", f"http://localhost:{port}/v1"]
    assert (doc["endpoint"], doc["endpoints"], doc["replicas"]) == (None, both, ["fl/r1", "fl/r2"])
    (lv,) = doc["levels"]
    assert lv["completed"] == 6 and lv["completed_per_endpoint"] == {both[0]: 3, both[1]: 3}, lv
    assert lv["cost_per_1m_output_tokens"] == pytest.approx(2 * 1.5 / (lv["output_tokens_per_s"] * 3600) * 1e6)
    assert Path(doc["saved"]).name.startswith("fl-")
    one = json.loads(run_cli("bench", "fl/r2", *args, env=env).stdout)
    assert (one["endpoint"], one["endpoints"], one["replicas"]) == (both[1], both[1:], ["fl/r2"])
    assert "completed_per_endpoint" not in one["levels"][0] and Path(one["saved"]).name.startswith("fl-r2-")
    table = run_cli("bench", "fl", "--concurrency", "2", "--requests", "4", "--output-tokens", "2", env=env).stdout
    assert f"  answered: 2 by {both[0]}, 2 by {both[1]}" in table, table
    down = run_cli("bench", "fl/r3", *args, env=env)
    assert down.returncode == 11 and "no engine of fl/r3 is running: fl/r3 (failed)" in down.stderr, down.stderr
    assert "hint: finish it first: `orchestrator deploy " in down.stderr and "`orchestrator status fl`" in down.stderr
    missing = run_cli("bench", "fl/r7", *args, env=env)
    assert missing.returncode == 11 and "has no replica r7" in missing.stderr, missing.stderr


def test_a_deployment_not_deployed_is_refused_with_the_way_to_finish_it(engine: str, tmp_path: Path) -> None:
    from orchestrator.state import Deployment, EngineRecord, StateStore

    record = EngineRecord(kind="vllm", model="m", served_name="m", endpoint=f"{engine}/v1", metrics_url="",
                          method="pip")  # fmt: skip
    home = tmp_path / "home"
    StateStore(home).save(Deployment(name="half", config_path="/c/half.yaml", status="failed", engine=record,
                                     last_error="monitoring: Prometheus reload failed"))  # fmt: skip
    proc = run_cli("bench", "half", "--requests", "1", env={"ORCHESTRATOR_HOME": str(home)})
    assert proc.returncode == 11, proc.stderr
    assert "error: deployment 'half' is not deployed (status: failed: monitoring: Prometheus reload failed)" in (
        proc.stderr
    )
    assert "hint: finish it first: `orchestrator deploy /c/half.yaml` (a re-run resumes)" in proc.stderr


def test_a_ray_cluster_is_benched_through_the_heads_serve_endpoint(engine: str, tmp_path: Path) -> None:
    """A Ray cluster's nodes record no engine of their own: bench NAME loads the one OpenAI endpoint, Serve's HTTP
    port on the head (here the loopback mock engine stands at that port), priced at every node's hours; NAME/rI
    of a cluster is refused (exit 11), as is a cluster not deployed."""
    import yaml

    from orchestrator.config import DeploymentConfig
    from orchestrator.state import Deployment, ReplicaRecord, ServerRecord, StateStore

    port = int(engine.rsplit(":", 1)[1])
    data = yaml.safe_load((REPO / "configs" / "vllm-ray-l40s.yaml").read_text())
    data["cluster"]["ports"]["serve_http"] = port
    data["provider"]["price_per_hour"] = 2.0
    data["engine"]["served_name"] = "m"
    cfg = DeploymentConfig.model_validate(data)
    ips = ["127.0.0.1", "127.0.0.2"]  # the head, then a worker (benched through the head, never directly)
    nodes = [ReplicaRecord(index=i, status="deployed",
                           server=ServerRecord(uuid=f"00c{i}", plan="GPU-8xCPU-64GB-1xL40S", zone="fi-hel2", ip=ip))
             for i, ip in enumerate(ips, start=1)]  # fmt: skip
    home = tmp_path / "home"
    dep = Deployment(name="qwen-ray", config_path="/x.yaml", status="deployed", replicas=nodes,
                     config=cfg.model_dump(mode="json"))  # fmt: skip
    StateStore(home).save(dep)
    env = {"ORCHESTRATOR_HOME": str(home), "VLLM_API_KEY": KEY}
    args = ["--json", "--concurrency", "2", "--requests", "4", "--input-tokens", "1", "--output-tokens", "2"]
    proc = run_cli("bench", "qwen-ray", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["endpoint"], doc["replicas"], doc["price_per_hour"]) == (f"{engine}/v1", None, 4.0)
    (lv,) = doc["levels"]
    assert lv["completed"] == 4 and "completed_per_endpoint" not in lv, lv
    node = run_cli("bench", "qwen-ray/r2", *args, env=env)
    assert node.returncode == 11 and "is a Ray cluster: its one endpoint is the head's" in node.stderr, node.stderr
    StateStore(home).save(dep.model_copy(update={"status": "failed"}))
    failed = run_cli("bench", "qwen-ray", *args, env=env)
    assert failed.returncode == 11 and "has no running Serve app (status: failed)" in failed.stderr, failed.stderr
    assert "hint: finish it first: `orchestrator deploy /x.yaml` (a re-run resumes)" in failed.stderr, failed.stderr


def test_bench_unknown_deployment_and_bad_levels_exit_cleanly(tmp_path: Path) -> None:
    env = {"ORCHESTRATOR_HOME": str(tmp_path / "home")}
    missing = run_cli("bench", "nope", "--json", env=env)
    assert missing.returncode == 11 and "no deployment named 'nope'" in json.loads(missing.stdout)["error"]
    bad = run_cli("bench", "nope", "--concurrency", "1,x", env=env)
    assert bad.returncode == 2 and "--concurrency" in bad.stderr


# ---------------------------------------------------------------- on the mock cloud: deploy, bench, teardown


@pytest.fixture
def deployed(served: Served) -> Iterator[tuple[dict[str, str], Path]]:
    """The session's shared vLLM deployment (1.92 EUR/h, generated API key; tests/conftest.py), its environment and
    home, with the TTFT/per-token knobs set for this test (the mock engine reads them per request) and put back."""
    host = served.cloud.hosts[0]
    host.set_knobs(engine_ttft=TTFT, engine_token_delay=PER_TOKEN)
    try:
        yield served.env, served.home
    finally:
        host.set_knobs(engine_ttft=DEFAULT_KNOBS["engine_ttft"], engine_token_delay=DEFAULT_KNOBS["engine_token_delay"])


def test_bench_on_the_mock_cloud_matches_the_engine_delays(deployed: tuple[dict[str, str], Path]) -> None:
    env, home = deployed
    proc = run_cli(
        "bench", SERVED, "--json", "--concurrency", "1,4", "--requests", "8", "--output-tokens", "10", env=env
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [lv["concurrency"] for lv in doc["levels"]] == [1, 4]
    for lv in doc["levels"]:
        assert (lv["completed"], lv["output_tokens"]) == (8, 80), lv["errors"]  # the generated key was sent
        assert within(lv["ttft_s"]["p50"], TTFT), lv
        assert within(lv["itl_s"]["p50"], PER_TOKEN), lv
        assert within(lv["tpot_s"]["p50"], PER_TOKEN), lv
        assert lv["cost_per_1m_output_tokens"] == pytest.approx(1.92 / (lv["output_tokens_per_s"] * 3600) * 1e6)
    saved = Path(doc["saved"])
    assert saved.parent == home / "bench" and saved.name.startswith(f"{SERVED}-")
    assert json.loads(saved.read_text())["levels"] == doc["levels"]
    key = (home / "secrets" / f"{SERVED}.api_key").read_text().strip()
    assert key not in proc.stdout + proc.stderr + saved.read_text()


def test_status_live_on_the_mock_cloud(deployed: tuple[dict[str, str], Path]) -> None:
    env, _home = deployed
    proc = run_cli("status", SERVED, "--json", env=env)  # live is the default
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)[0]
    live = doc["live"]
    assert live["server"] == {"checked": True, "state": "started", "error": None}
    assert live["engine_health"]["checked"] is True and live["engine_health"]["ok"] is True, live
    assert (live["price_per_hour"], live["currency"], live["cost_so_far"]) == (1.92, "EUR", 1.92)
    assert doc["cost"] == {"price_per_hour": 1.92, "currency": "EUR", "so_far": 1.92}
    every = json.loads(run_cli("status", "--json", env=env).stdout)  # no NAME: every deployment, checked live
    assert [d["live"]["server"]["state"] for d in every] == ["started"] and every[0]["live"]["engine_health"]["ok"]
    offline = run_cli("status", SERVED, "--json", env=env | {"UPCLOUD_TOKEN": "", "UPCLOUD_USERNAME": ""})
    assert offline.returncode == 0, offline.stderr
    gone = json.loads(offline.stdout)[0]["live"]
    assert gone["server"] == {"checked": False, "state": None, "error": "upctl found no UpCloud credentials"}
    assert gone["engine_health"]["ok"] is True  # the engine is probed all the same


def test_bench_with_a_refused_key_exits_8_with_one_json_document(deployed: tuple[dict[str, str], Path]) -> None:
    env, _home = deployed
    proc = run_cli("bench", SERVED, "--json", "--concurrency", "2", "--requests", "2", env=env | {"VLLM_API_KEY": "x"})
    assert proc.returncode == 8, proc.stderr
    doc = json.loads(proc.stdout)  # one document: the figures and the error together
    assert doc["ok"] is False and doc["exit_code"] == 8 and "HTTP 401" in doc["error"]
    assert doc["levels"][0]["failed"] == 2 and Path(doc["saved"]).is_file()


@pytest.mark.consumes_served
def test_teardown_summary_totals_the_lifetime_cost(deployed: tuple[dict[str, str], Path]) -> None:
    env, _home = deployed
    proc = run_cli("teardown", SERVED, "--yes", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "  cost:     ≈ 1.92 EUR for " in proc.stdout
    assert "(1 started hour(s) at 1.92 EUR per hour)" in proc.stdout


def test_status_live_probes_the_engine_and_says_what_it_could_not_check(engine: str, tmp_path: Path) -> None:
    from orchestrator.config import DeploymentConfig
    from orchestrator.state import Deployment, EngineRecord, ServerRecord, StateStore

    port = int(engine.rsplit(":", 1)[1])
    cfg = DeploymentConfig.model_validate(
        {
            "name": "live",
            "provider": {"price_per_hour": 1.5},
            "engine": {"kind": "vllm", "model": "m", "served_name": "m", "port": port},
        }
    )
    home = tmp_path / "home"
    server = ServerRecord(uuid="00bb", plan="GPU-8xCPU-64GB-1xL40S", zone="fi-hel2", ip="127.0.0.1", state="started")
    record = EngineRecord(
        kind="vllm", model="m", served_name="m", endpoint=f"{engine}/v1", metrics_url=f"{engine}/metrics", method="pip"
    )
    StateStore(home).save(
        Deployment(
            name="live", config_path="/x.yaml", status="deployed", server=server, engine=record,
            config=cfg.model_dump(mode="json"),
        )
    )
    env = {"ORCHESTRATOR_HOME": str(home), "ORCHESTRATOR_UPCTL": str(tmp_path / "no-upctl"), "VLLM_API_KEY": KEY}
    proc = run_cli("status", "live", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    live = json.loads(proc.stdout)[0]["live"]
    assert live["server"] == {"checked": False, "state": None, "error": f"{tmp_path / 'no-upctl'}: command not found"}
    assert live["engine_health"]["checked"] is True and live["engine_health"]["ok"] is True
    assert (live["price_per_hour"], live["currency"], live["cost_so_far"]) == (1.5, "EUR", 1.5)
    wrong = run_cli("status", "live", "--live", env=env | {"VLLM_API_KEY": "wrong"})  # --live: a no-op alias
    assert wrong.returncode == 0, wrong.stderr
    assert "  server:  not checked: " in wrong.stdout
    assert "  engine:  UNHEALTHY: " in wrong.stdout and "401" in wrong.stdout
    table = run_cli("status", env=env | {"VLLM_API_KEY": "wrong"}).stdout  # no NAME: every deployment, live
    assert "live live:" in table and "  engine:  UNHEALTHY: " in table and "401" in table
    local = run_cli("status", "live", "--local", "--json", env=env)
    assert local.returncode == 0 and "live" not in json.loads(local.stdout)[0]  # --local asks nobody
    assert "live:" not in run_cli("status", "live", "--local", env=env).stdout


def test_tfserving_inferences_per_second_and_latency(tmp_path: Path) -> None:
    from tests.test_mock_engines import SAVED_MODEL, Engine

    (tmp_path / "run" / "pids").mkdir(parents=True)
    write_knobs(tmp_path / "knobs.json", DEFAULT_KNOBS | {"engine_startup_delay": 0.1})
    tfs = Engine(tmp_path, "mockcloud.engine_tfserving", [], [8501], [[str(SAVED_MODEL), "/models/half_plus_two"]])
    try:
        tfs.available()
        url = f"http://127.0.0.1:{tfs.port[8501]}/v1/models/half_plus_two:predict"
        body = json.dumps({"instances": [1.0, 2.0]})
        levels = bench.run_inference([url], body, levels=[1, 3], requests=6, timeout=30)
        assert [(lv["concurrency"], lv["completed"], lv["failed"]) for lv in levels] == [(1, 6, 0), (3, 6, 0)]
        for lv in levels:
            assert lv["inferences_per_s"] == pytest.approx(6 / lv["duration_s"])
            assert 0 < lv["latency_s"]["p50"] <= lv["latency_s"]["p99"] <= lv["duration_s"]
        (bad,) = bench.run_inference([url], json.dumps({"instances": ["a"]}), levels=[2], requests=2, timeout=30)
        assert bad["completed"] == 0 and bad["errors"][0].startswith("HTTP 400")
    finally:
        tfs.stop()


# ---------------------------------------------------------------- Triton: a request built from the model's metadata


INFER_DELAY = 0.4  # large enough that request overhead on a busy 2-core machine stays well inside 10 %


def test_triton_request_is_synthesized_from_the_kserve_metadata() -> None:
    from orchestrator.bench_triton import infer_request

    meta = {
        "name": "m",
        "inputs": [
            {"name": "INPUT0", "datatype": "INT32", "shape": [-1, 16]},
            {"name": "MASK", "datatype": "BOOL", "shape": [2, -1]},
            {"name": "TEXT", "datatype": "BYTES", "shape": [1]},
            {"name": "X", "datatype": "FP16", "shape": []},
        ],
    }
    body = infer_request(meta)
    assert body["inputs"][0] == {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": [0] * 16}
    assert body["inputs"][1]["shape"] == [2, 1] and body["inputs"][1]["data"] == [False, False]
    assert body["inputs"][2]["data"] == [""] and body["inputs"][3] == {
        "name": "X", "shape": [], "datatype": "FP16", "data": [0.0]
    }  # fmt: skip
    with pytest.raises(Exception, match="lists no inputs"):
        infer_request({"name": "m", "inputs": []})


def test_triton_bench_matches_the_configured_delay_and_wrong_inputs_get_triton_errors(tmp_path: Path) -> None:
    from orchestrator.bench_triton import prepare
    from tests.test_mock_engines import TRITON_REPO, Engine

    (tmp_path / "run" / "pids").mkdir(parents=True)
    write_knobs(tmp_path / "knobs.json", DEFAULT_KNOBS | {"engine_startup_delay": 0.1})
    triton = Engine(tmp_path, "mockcloud.engine_triton", ["tritonserver", "--model-repository=/models"], [8000],
                    [[str(TRITON_REPO), "/models"]])  # fmt: skip
    try:
        triton.until(8000, "/v2/health/ready", 200)
        base = f"http://127.0.0.1:{triton.port[8000]}/v2"
        model, url, body = prepare(base, [], timeout=10)  # no model listed: the first READY one of the repository
        assert (model, url) == ("identity_fp32", f"{base}/models/identity_fp32/infer")
        assert json.loads(body) == {"inputs": [{"name": "INPUT0", "shape": [1, 1], "datatype": "FP32", "data": [0.0]}]}
        with httpx.Client(trust_env=False) as client:
            wrong = json.loads(body)
            wrong["inputs"][0]["datatype"] = "INT32"
            r = client.post(url, json=wrong)
            assert r.status_code == 400 and r.json() == {
                "error": "[request id: <id_unknown>] inference input 'INPUT0' data-type is 'INT32', but model "
                "'identity_fp32' expects 'FP32'"
            }
            wrong["inputs"][0] |= {"datatype": "FP32", "shape": [1, 1, 1]}
            r = client.post(url, json=wrong)
            assert r.status_code == 400 and "unexpected shape for input 'INPUT0'" in r.json()["error"]
            r = client.get(f"{base}/models/nope")
            assert r.status_code == 400 and r.json() == {"error": "Request for unknown model: 'nope' is not found"}
        # The delay is read per request: set after start-up, as a test on a deployed host does.
        write_knobs(tmp_path / "knobs.json", DEFAULT_KNOBS | {"engine_infer_delay": INFER_DELAY})
        levels = bench.run_inference([url], body, levels=[1, 4], requests=8, timeout=60)
        assert [(lv["concurrency"], lv["completed"], lv["failed"]) for lv in levels] == [(1, 8, 0), (4, 8, 0)]
        for lv in levels:
            for q in ("p50", "p95", "mean"):
                assert within(lv["latency_s"][q], INFER_DELAY), (lv["concurrency"], q, lv["latency_s"])
            assert within(lv["inferences_per_s"], lv["concurrency"] / INFER_DELAY), lv
        with pytest.raises(Exception, match="HTTP 400 for model 'nope'.*not found"):
            prepare(base, ["nope"], timeout=10)
    finally:
        triton.stop()
