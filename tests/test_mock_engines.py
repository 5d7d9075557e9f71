"""The mock Triton and TF Serving engines on loopback, as the docker shim starts them (ports, mounts, knobs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mockcloud.engine_common import cuda_requirement, launch, parse_pbtxt
from mockcloud.hosts import DEFAULT_KNOBS, write_knobs
from mockcloud.prometheus import free_port
from orchestrator.failures import match_failure
from tests.conftest import REPO

TRITON_REPO = REPO / "examples" / "triton" / "model_repository"
SAVED_MODEL = REPO / "examples" / "tfserving" / "half_plus_two"


class Engine:
    """One mock engine process with its published ports; always stopped by the fixture."""

    def __init__(
        self, home: Path, module: str, args: list[str], ports: list[int], mounts: list[list[str]], gpu: bool = True
    ) -> None:
        self.port = {p: free_port() for p in ports}
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "MOCKHOST_HOME": str(home),
            "MOCKENGINE_PORTS": json.dumps({str(p): ["127.0.0.1", str(h)] for p, h in self.port.items()}),
            "MOCKENGINE_MOUNTS": json.dumps(mounts),
            "MOCKENGINE_GPU": "1" if gpu else "0",
            "MODEL_NAME": "half_plus_two",
        }
        self.log = home / f"{module}-{self.port[ports[0]]}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, *args], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def get(self, port: int, path: str, body: object | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port[port]}{path}", data=data, timeout=5) as r:
                text = r.read().decode()
                return r.status, json.loads(text) if text.startswith(("{", "[")) else text
        except urllib.error.HTTPError as exc:
            text = exc.read().decode()
            return exc.code, json.loads(text) if text.startswith(("{", "[")) else text
        except OSError:
            return 0, None

    def until(self, port: int, path: str, code: int, timeout: float = 10.0) -> list[int]:
        """Poll until ``path`` answers ``code``; the distinct codes seen on the way (0 = refused)."""
        seen: list[int] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.get(port, path)[0]
            if not seen or seen[-1] != got:
                seen.append(got)
            if got == code:
                return seen
            time.sleep(0.05)
        raise AssertionError(f"{path} never answered {code}: {seen}\n{self.log.read_text()}")

    def available(self, timeout: float = 10.0) -> str:
        """Poll TF Serving's model status until AVAILABLE (or the deadline); the states seen before it."""
        self.until(8501, "/v1/models/half_plus_two", 200, timeout)
        deadline, seen = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            state = self.get(8501, "/v1/models/half_plus_two")[1]["model_version_status"][0]["state"]
            if state == "AVAILABLE":
                return " ".join([*dict.fromkeys(seen), state])
            seen.append(state)
            time.sleep(0.05)
        raise AssertionError(f"never AVAILABLE: {seen}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "run" / "pids").mkdir(parents=True)
    write_knobs(tmp_path / "knobs.json", {**DEFAULT_KNOBS, "engine_startup_delay": 0.6})
    return tmp_path


@pytest.fixture
def started(home: Path) -> Iterator[list[Engine]]:
    engines: list[Engine] = []
    yield engines
    for engine in engines:
        engine.stop()


def triton(home: Path, started: list[Engine], repo: Path, *args: str) -> Engine:
    engine = Engine(
        home,
        "mockcloud.engine_triton",
        ["tritonserver", "--model-repository=/models", *args],
        [8000, 8002],
        [[str(repo), "/models"]],
    )
    started.append(engine)
    return engine


def test_triton_not_ready_400_then_ready_serves_and_counts(home: Path, started: list[Engine]) -> None:
    t = triton(home, started, TRITON_REPO)
    seen = t.until(8000, "/v2/health/ready", 200)
    assert 400 in seen and seen[-1] == 200, seen  # 400 while loading, as Triton answers
    assert t.get(8000, "/v2/models/identity_fp32/ready")[0] == 200
    assert t.get(8000, "/v2/models/nope/ready") == (400, {"error": "Request for unknown model: 'nope' is not found"})
    meta = t.get(8000, "/v2/models/identity_fp32")[1]
    assert meta["platform"] == "python" and meta["inputs"][0] == {
        "name": "INPUT0",
        "datatype": "FP32",
        "shape": [-1, -1],
    }
    request = {"inputs": [{"name": "INPUT0", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    code, answer = t.get(8000, "/v2/models/identity_fp32/infer", request)
    assert code == 200 and answer["outputs"] == [
        {"name": "OUTPUT0", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3, 4]}
    ]
    assert t.get(8000, "/v2/models/identity_fp32/infer", {"inputs": []})[0] == 400
    metrics = t.get(8002, "/metrics")[1]
    assert "# TYPE nv_inference_request_success counter" in metrics  # exact names, no _total suffix
    assert 'nv_inference_request_success{model="identity_fp32",version="1"} 1.0' in metrics
    assert 'nv_inference_count{model="identity_fp32",version="1"} 2.0' in metrics  # a batch of 2
    assert 'nv_inference_request_failure{model="identity_fp32",reason="OTHER",version="1"} 1.0' in metrics
    assert "nv_gpu_memory_total_bytes{gpu_uuid=" in metrics and "nv_gpu_utilization" in metrics
    assert t.get(8002, "/v2/health/ready")[0] == 404  # the metrics port serves metrics only
    assert "| identity_fp32 | 1       | READY  |" in t.log.read_text()
    assert json.loads(next((home / "run" / "pids").iterdir()).read_text())["kind"] == "triton"


def test_triton_bad_model_exits_with_its_table_f14(home: Path, started: list[Engine], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(TRITON_REPO, repo)
    (repo / "identity_fp32" / "config.pbtxt").write_text('name: "identity_fp32"\nbackend: "python"\ninput [ {\n')
    t = triton(home, started, repo)
    assert t.proc.wait(10) == 1
    log = t.log.read_text()
    assert "| UNAVAILABLE: Internal: failed to read text proto from /models/identity_fp32/config.pbtxt" in log
    assert "error: creating server: Internal - failed to load all models" in log
    known = match_failure(log)
    assert known is not None and known.code == "F14"


def test_triton_without_exit_on_error_stays_up_not_ready(home: Path, started: list[Engine], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(TRITON_REPO, repo)
    shutil.copytree(repo / "identity_fp32", repo / "second")
    (repo / "second" / "config.pbtxt").write_text('name: "second"\nbackend: "python"\n')
    write_knobs(home / "knobs.json", {**DEFAULT_KNOBS, "engine_startup_delay": 0.2, "triton_model_fail": "second"})
    t = triton(home, started, repo, "--exit-on-error=false")
    t.until(8000, "/v2/models/identity_fp32/ready", 200)
    assert t.get(8000, "/v2/health/ready")[0] == 400 and t.get(8000, "/v2/models/second/ready")[0] == 400
    index = {m["name"]: m for m in t.get(8000, "/v2/repository/index", {})[1]}
    assert index["identity_fp32"]["state"] == "READY"
    assert index["second"] == {
        "name": "second",
        "version": "1",
        "state": "UNAVAILABLE",
        "reason": "Internal: Stub process 'second_0_0' is not healthy.",
    }
    assert t.proc.poll() is None


def test_triton_explicit_mode_loads_only_listed_models(home: Path, started: list[Engine], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(TRITON_REPO, repo)
    (repo / "broken").mkdir()  # never loaded, so it cannot fail the server
    t = triton(home, started, repo, "--model-control-mode=explicit", "--load-model=identity_fp32")
    t.until(8000, "/v2/health/ready", 200)
    assert [m["name"] for m in t.get(8000, "/v2/repository/index", {})[1]] == ["identity_fp32"]


def tfserving(home: Path, started: list[Engine], model: Path, *args: str, monitoring: Path | None = None) -> Engine:
    mounts = [[str(model), "/models/half_plus_two"]]
    if monitoring is not None:
        mounts.append([str(monitoring), "/models/monitoring.config"])
        args = ("--monitoring_config_file=/models/monitoring.config", *args)
    engine = Engine(home, "mockcloud.engine_tfserving", list(args), [8501], mounts)
    started.append(engine)
    return engine


def test_tfserving_loading_available_predict_metrics(home: Path, started: list[Engine], tmp_path: Path) -> None:
    from orchestrator.engines.tfserving import monitoring_config

    config = tmp_path / "monitoring.config"
    config.write_text(monitoring_config())
    t = tfserving(home, started, SAVED_MODEL, monitoring=config)
    assert t.available() == "LOADING AVAILABLE"
    got = t.get(8501, "/v1/models/half_plus_two")[1]["model_version_status"]
    assert got == [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    assert t.get(8501, "/v1/models/half_plus_two:predict", {"instances": [1.0, 2.0, 5.0]}) == (
        200,
        {"predictions": [2.5, 3.0, 4.5]},
    )
    assert t.get(8501, "/v1/models/half_plus_two:predict", {"inputs": {"x": [[4.0]]}}) == (
        200,
        {"outputs": {"x": [[4.0]]}},
    )
    code, err = t.get(8501, "/v1/models/half_plus_two:predict", {"instances": ["a"]})
    assert code == 400 and "is not of expected type: float" in err["error"]
    assert t.get(8501, "/v1/models/other:predict", {"instances": [1]})[0] == 404
    metrics = t.get(8501, "/monitoring/prometheus/metrics")[1]
    assert "# TYPE :tensorflow:serving:request_count counter" in metrics
    assert ':tensorflow:serving:request_count{model_name="half_plus_two",status="OK"} 2.0' in metrics
    assert ':tensorflow:serving:request_count{model_name="half_plus_two",status="INVALID_ARGUMENT"} 1.0' in metrics
    assert ':tensorflow:serving:request_latency_bucket{API="predict",entrypoint="REST",le="+Inf",' in metrics
    assert (
        ':tensorflow:cc:saved_model:load_attempt_count{model_path="/models/half_plus_two/1",status="success"}'
        in metrics
    )


def test_tfserving_has_no_metrics_without_monitoring_config(home: Path, started: list[Engine]) -> None:
    t = tfserving(home, started, SAVED_MODEL)
    t.until(8501, "/v1/models/half_plus_two", 200)
    assert t.get(8501, "/monitoring/prometheus/metrics")[0] == 404


def test_tfserving_gpu_pinned_model_without_gpu_f13(home: Path, started: list[Engine], tmp_path: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(SAVED_MODEL, model)
    graph = model / "1" / "saved_model.pbtxt"
    graph.write_text(graph.read_text().replace('op: "Const"', 'op: "Const"\n      device: "/device:GPU:0"', 1))
    mounts = [[str(model), "/models/half_plus_two"]]
    on_gpu = Engine(home, "mockcloud.engine_tfserving", [], [8501], mounts)
    started.append(on_gpu)
    on_cpu = Engine(home, "mockcloud.engine_tfserving", [], [8501], mounts, gpu=False)
    started.append(on_cpu)
    assert on_cpu.proc.wait(10) == 255
    log = on_cpu.log.read_text()
    assert "Cannot assign a device for operation 'a'" in log and "Failed to start server." in log
    known = match_failure(log)
    assert known is not None and known.code == "F13"
    assert on_gpu.available() == "AVAILABLE"  # with a GPU the same graph loads


def test_tfserving_without_versions_keeps_waiting(home: Path, started: list[Engine], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    t = tfserving(home, started, tmp_path / "empty")
    t.until(8501, "/v1/models/half_plus_two", 404)
    assert t.get(8501, "/v1/models/half_plus_two")[1] == {"error": "Could not find any versions of model half_plus_two"}
    assert "No versions of servable half_plus_two found under base path /models/half_plus_two" in t.log.read_text()
    assert t.proc.poll() is None


def test_tfserving_rejects_unknown_flags(home: Path, started: list[Engine]) -> None:
    t = tfserving(home, started, SAVED_MODEL, "--no_such_flag=1")
    assert t.proc.wait(10) == 255 and "unknown argument: --no_such_flag=1" in t.log.read_text()


def test_docker_launch_wiring_and_cuda_requirements(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCKHOST_HOME", str(home))
    values = {
        "-p": ["8000:8000", "127.0.0.1:9002:8002"],
        "-v": ["/srv/m:/models:ro"],
        "--mount": ["type=bind,source=/a,target=/b"],
    }
    env = launch("nvcr.io/nvidia/tritonserver", "25.08-py3", values, True, [])
    assert json.loads(env["MOCKENGINE_PORTS"]) == {"8000": ["", "8000"], "8002": ["127.0.0.1", "9002"]}
    assert json.loads(env["MOCKENGINE_MOUNTS"]) == [["/srv/m", "/models"], ["/a", "/b"]]
    assert env["MOCKENGINE_GPU"] == "1"
    assert launch("tensorflow/serving", "2.19.0", {}, True, [])["MOCKENGINE_GPU"] == "0"  # the CPU image
    assert cuda_requirement("nvcr.io/nvidia/tritonserver", "25.08-py3") == ("13.0", 575)
    assert cuda_requirement("nvcr.io/nvidia/tritonserver", "25.03-py3") == ("12.8", 560)
    assert cuda_requirement("tensorflow/serving", "2.19.0") is None
    write_knobs(home / "knobs.json", {**DEFAULT_KNOBS, "driver": "570.133.20"})
    with pytest.raises(RuntimeError, match=r"unsatisfied condition: cuda>=13\.0") as err:
        launch("nvcr.io/nvidia/tritonserver", "25.10-py3", {}, True, [])
    known = match_failure(str(err.value))
    assert known is not None and known.code == "F4"
    assert launch("nvcr.io/nvidia/tritonserver", "25.10-py3", {}, False, [])["MOCKENGINE_GPU"] == "0"


def test_pbtxt_parser_accepts_what_protobuf_writes_and_rejects_the_rest() -> None:
    parsed = parse_pbtxt('name: "m" input [ { name: "a", dims: [ -1, 3 ] }, { name: "b" } ] opt < k: 1 >; x { }')
    assert parsed == {
        "name": ["m"],
        "input": [{"name": ["a"], "dims": ["-1", "3"]}, {"name": ["b"]}],
        "opt": [{"k": ["1"]}],
        "x": [{}],
    }
    for bad in ('name "m"', "input [ { name: 1 ]", "a: {", 'a: "open'):
        with pytest.raises(ValueError):
            parse_pbtxt(bad)
