"""End to end for Triton and TF Serving on the mock cloud: deploy, a real request, Prometheus scrapes, teardown."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from mockcloud.cloud import MockCloud
from mockcloud.prometheus import Prometheus
from mockcloud.upctl import read_state
from tests.conftest import REPO, run_cli
from tests.test_e2e import cloud, engine_processes, env, prom, write_config  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")

TRITON_REPO = REPO / "examples" / "triton" / "model_repository"
SAVED_MODEL = REPO / "examples" / "tfserving" / "half_plus_two"
FAST = {"timeout": "60s", "interval": "0.3s"}


def engine_config(cloud: MockCloud, tmp_path: Path, prom: Prometheus | None, name: str, engine: dict[str, Any]) -> Path:
    """test_e2e's mock-cloud config with its vLLM engine section replaced."""
    path = write_config(cloud, tmp_path, prom, name=name)
    data = yaml.safe_load(path.read_text())
    data["engine"] = {"health": FAST, **engine}
    path.write_text(yaml.safe_dump(data))
    return path


def status_of(name: str, env: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(run_cli("status", name, "--json", env=env).stdout)[0]
    return doc


def http_json(url: str, body: object | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def scrape_job(prom_cfg: Path, job: str) -> dict[str, Any]:
    jobs = yaml.safe_load(prom_cfg.read_text())["scrape_configs"]
    found: dict[str, Any] = next(j for j in jobs if j["job_name"] == job)
    return found


def host_home(cloud: MockCloud, ip: str) -> Path:
    return next(h.home for h in cloud.hosts if h.ipv4 == ip)


def teardown_clean(cloud: MockCloud, name: str, env: dict[str, str], prom_cfg: Path | None = None) -> None:
    down = run_cli("teardown", name, "--yes", env=env)
    assert down.returncode == 0, down.stderr
    assert read_state(cloud.upctl_home)["servers"] in ({}, [])
    assert engine_processes(cloud) == []
    if prom_cfg is not None:
        assert f"orchestrator-{name}" not in prom_cfg.read_text()


def test_triton_deploy_infer_scrape_teardown(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    cfg = engine_config(cloud, tmp_path, prom, "trt", {"kind": "triton", "model_repository": str(TRITON_REPO)})
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 0, proc.stderr
    for step in ("install-stack", "start-engine", "health", "monitoring"):
        assert f"{step}: ok" in proc.stderr
    status = status_of("trt", env)
    ip, eng = status["server"]["ip"], status["engine"]
    assert eng["kind"] == "triton" and eng["method"] == "docker" and eng["endpoint"] == f"http://{ip}:8000/v2"
    assert eng["metrics_url"] == f"http://{ip}:8002/metrics" and status["health"]["ok"] is True
    # the repository was uploaded over SFTP and is what the container serves
    uploaded = host_home(cloud, ip) / ".orchestrator" / "trt" / "models" / "identity_fp32"
    assert (uploaded / "config.pbtxt").read_text() == (TRITON_REPO / "identity_fp32" / "config.pbtxt").read_text()
    assert (uploaded / "1" / "model.py").is_file() and not (uploaded.parent.parent / "models.upload").exists()

    request = {"inputs": [{"name": "INPUT0", "shape": [1, 3], "datatype": "FP32", "data": [1.0, 2.0, 3.0]}]}
    answer = http_json(f"{eng['endpoint']}/models/identity_fp32/infer", request)
    assert answer["outputs"][0]["name"] == "OUTPUT0" and answer["outputs"][0]["data"] == [1.0, 2.0, 3.0]

    prom_cfg = Path(status["monitoring"]["prometheus_config"])
    job = scrape_job(prom_cfg, "orchestrator-trt")
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == [f"{ip}:8002"]
    if prom is not None:
        up = prom.wait_up("orchestrator-trt", timeout=30)
        assert up[0]["metric"]["instance"] == f"{ip}:8002"  # type: ignore[index]
        prom.wait_value('nv_inference_request_success{job="orchestrator-trt",model="identity_fp32"}', 1)
        assert prom.query('nv_gpu_memory_total_bytes{job="orchestrator-trt"}')
    teardown_clean(cloud, "trt", env, prom_cfg)


def test_tfserving_deploy_predict_scrape_redeploy_teardown(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    model = tmp_path / "models" / "half_plus_two"
    shutil.copytree(SAVED_MODEL, model)
    engine = {"kind": "tfserving", "saved_model": str(model), "example_input": {"instances": [1.0, 2.0, 5.0]}}
    cfg = engine_config(cloud, tmp_path, prom, "tfs", engine)
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 0, proc.stderr
    status = status_of("tfs", env)
    ip, eng = status["server"]["ip"], status["engine"]
    assert eng["endpoint"] == f"http://{ip}:8501/v1/models/half_plus_two" and eng["served_name"] == "half_plus_two"
    assert "predict answered" in status["health"]["detail"]
    versions = http_json(eng["endpoint"])["model_version_status"]
    assert [(v["version"], v["state"]) for v in versions] == [("1", "AVAILABLE")]
    assert http_json(f"{eng['endpoint']}:predict", {"instances": [1.0, 2.0, 5.0]}) == {"predictions": [2.5, 3.0, 4.5]}

    prom_cfg = Path(status["monitoring"]["prometheus_config"])
    job = scrape_job(prom_cfg, "orchestrator-tfs")
    assert job["metrics_path"] == "/monitoring/prometheus/metrics"
    assert job["static_configs"][0]["targets"] == [f"{ip}:8501"]
    if prom is not None:
        prom.wait_up("orchestrator-tfs", timeout=30)
        prom.wait_value(':tensorflow:serving:request_count{job="orchestrator-tfs",status="OK"}', 2)

    # a new version folder: redeploy uploads the model again and TF Serving serves the newest version
    shutil.copytree(model / "1", model / "2")
    again = run_cli("redeploy", str(cfg), env=env)
    assert again.returncode == 0, again.stderr
    versions = http_json(eng["endpoint"])["model_version_status"]
    assert [(v["version"], v["state"]) for v in versions] == [("2", "AVAILABLE")]
    engines = [p for p in engine_processes(cloud) if b"__supervise" not in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(engines) == 1, "redeploy must replace the container, not add one"
    teardown_clean(cloud, "tfs", env, prom_cfg)


def test_triton_bad_model_exit_8_explained(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(TRITON_REPO, repo)
    config = repo / "identity_fp32" / "config.pbtxt"
    config.write_text(config.read_text().replace('backend: "python"', 'backend: "pyhton"'))
    cfg = engine_config(cloud, tmp_path, prom, "trtbad", {"kind": "triton", "model_repository": str(repo)})
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 8, proc.stderr
    assert not any(line.startswith("Traceback") for line in proc.stderr.splitlines())
    assert "Triton could not load a model (UNAVAILABLE) (F14)" in proc.stderr  # failures.py's explanation
    assert "| UNAVAILABLE: Invalid argument: unable to find backend library for backend 'pyhton'" in proc.stderr
    assert "failed to load all models" in proc.stderr and "KEPT for debugging" in proc.stderr
    assert status_of("trtbad", env)["health"]["ok"] is False
    teardown_clean(cloud, "trtbad", env)


def test_tfserving_gpu_model_on_cpu_image_exit_8_explained(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    model = tmp_path / "pinned"
    shutil.copytree(SAVED_MODEL, model)
    graph = model / "1" / "saved_model.pbtxt"
    graph.write_text(graph.read_text().replace('name: "a"\n', 'name: "a"\n      device: "/device:GPU:0"\n', 1))
    engine = {"kind": "tfserving", "saved_model": str(model), "image": "tensorflow/serving:2.19.0"}
    proc = run_cli("deploy", str(engine_config(cloud, tmp_path, prom, "tfcpu", engine)), env=env)
    assert proc.returncode == 8, proc.stderr
    assert not any(line.startswith("Traceback") for line in proc.stderr.splitlines())
    assert "TF Serving cannot place the model on a GPU (F13)" in proc.stderr
    assert "Cannot assign a device for operation 'a'" in proc.stderr  # the engine's own log tail
    teardown_clean(cloud, "tfcpu", env)


def test_triton_image_needs_newer_driver_exit_8(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    for h in cloud.hosts:
        h.set_knobs(driver="550.163.01")
    cfg = engine_config(cloud, tmp_path, prom, "olddrv", {"kind": "triton", "model_repository": str(TRITON_REPO)})
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 8, proc.stderr
    assert "(F4)" in proc.stderr and "unsatisfied condition: cuda>=13.0" in proc.stderr
    teardown_clean(cloud, "olddrv", env)
