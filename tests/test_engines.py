"""Triton and TF Serving plans as expected text, upload listings, and the readiness verdicts of their probes."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from orchestrator.actions import HttpCheck, Upload, UploadFile
from orchestrator.config import DeploymentConfig, load_config
from orchestrator.engines import engine_for
from orchestrator.engines.tfserving import TfServingEngine, monitoring_config
from orchestrator.engines.triton import TritonEngine
from orchestrator.errors import EngineError
from orchestrator.health import EXPECTATIONS, run_check
from orchestrator.model_files import dirs_under, files_under
from tests.test_engine_config import SAVED_MODEL, repo, write  # noqa: F401 - shared fixture

# ---------------------------------------------------------------- plans


def engine(tmp_path: Path, text: str) -> TritonEngine | TfServingEngine:
    e = engine_for(load_config(write(tmp_path / "c.yaml", text)))
    assert isinstance(e, (TritonEngine, TfServingEngine))
    return e


def test_triton_plan(tmp_path: Path, repo: Path) -> None:
    e = engine(tmp_path, f"name: trt\nengine:\n  kind: triton\n  model_repository: {repo}\n  http_port: 9000\n")
    assert e.install_probe().command == "docker image inspect --format '{{.Id}}' nvcr.io/nvidia/tritonserver:25.08-py3"
    assert [c.command for c in e.install()] == ["docker pull nvcr.io/nvidia/tritonserver:25.08-py3"]
    stage = ".orchestrator/trt/models.upload"
    assert [a.describe() for a in e.start({})] == [
        "remote: docker rm -f orchestrator-trt >/dev/null 2>&1; true",
        "remote: mkdir -p .orchestrator/trt && chmod 700 .orchestrator/trt",
        f"remote: rm -rf {stage} && mkdir -p {stage} {stage}/identity_fp32 {stage}/identity_fp32/1",
        f"upload: {stage}/identity_fp32/1/model.py <- {repo}/identity_fp32/1/model.py (mode 0644, "
        f"{(repo / 'identity_fp32/1/model.py').stat().st_size} bytes)",
        f"upload: {stage}/identity_fp32/config.pbtxt <- {repo}/identity_fp32/config.pbtxt (mode 0644, "
        f"{(repo / 'identity_fp32/config.pbtxt').stat().st_size} bytes)",
        f"remote: rm -rf .orchestrator/trt/models && mv {stage} .orchestrator/trt/models",
        f"upload: .orchestrator/trt/start.sh (mode 0700, {len(e.start_script())} bytes)",
        'remote: out=$(sh .orchestrator/trt/start.sh 2>&1); rc=$?; printf "%s\\n" "$out" | tail -n 20; exit $rc',
    ]
    assert e.start_script() == (
        "#!/bin/sh\n# written by orchestrator for deployment trt\n"
        'cd "$(dirname "$0")" || exit 1\n'
        "docker rm -f orchestrator-trt >/dev/null 2>&1\n"
        "docker run -d --name orchestrator-trt --restart unless-stopped --gpus=all --shm-size=1g -p 9000:8000 "
        "-p 8001:8001 -p 8002:8002 "
        '-v "$PWD"/models:/models nvcr.io/nvidia/tritonserver:25.08-py3 tritonserver --model-repository=/models\n'
    )
    watch = (
        "; while polling, is it alive: remote: docker inspect -f '{{.State.Status}}' orchestrator-trt 2>/dev/null "
        "| grep -qx running; if it fails, its log: remote: docker logs --tail 80 orchestrator-trt 2>&1"
    )
    assert [c.describe() for c in e.readiness("203.0.113.5", api_key=False)] == [
        "http: GET http://203.0.113.5:9000/v2/health/ready expect triton-ready, poll every 2s up to 600s" + watch,
        "http: GET http://203.0.113.5:9000/v2/models/identity_fp32/ready expect triton-ready identity_fp32, "
        "poll every 2s up to 600s" + watch,
    ]
    assert all(c.liveness == e.running_probe() and c.log_tail == e.log_tail() for c in e.readiness("x", False))
    target = e.scrape_target("203.0.113.5")
    assert (target.job, target.targets, target.metrics_path) == ("orchestrator-trt", ("203.0.113.5:8002",), "/metrics")
    assert dict(target.labels) == {"deployment": "trt", "engine": "triton"}  # no "model": Triton's series have one
    assert e.endpoint("203.0.113.5") == "http://203.0.113.5:9000/v2" and e.method == "docker"


def test_triton_listed_models_are_loaded_explicitly(tmp_path: Path, repo: Path) -> None:
    shutil.copytree(repo / "identity_fp32", repo / "second")
    write(repo / "second" / "config.pbtxt", 'name: "second"\nbackend: "python"\n')
    text = f"name: trt\nengine:\n  kind: triton\n  model_repository: {repo}\n  models: [second]\n"
    e = engine(tmp_path, text)
    assert isinstance(e, TritonEngine)
    assert e.server_args() == [
        "tritonserver",
        "--model-repository=/models",
        "--model-control-mode=explicit",
        "--load-model=second",
    ]
    assert [c.expect_arg for c in e.readiness("ip", False)] == ["", "second"]
    own = engine(tmp_path, text + "  extra_args: [--model-control-mode=poll, --strict-readiness=false]\n")
    assert isinstance(own, TritonEngine)
    assert own.server_args()[2:] == ["--model-control-mode=poll", "--strict-readiness=false"]
    everything = engine(tmp_path, f"name: trt\nengine:\n  kind: triton\n  model_repository: {repo}\n")
    assert [c.expect_arg for c in everything.readiness("ip", False)] == ["", "identity_fp32", "second"]


def test_tfserving_plan(tmp_path: Path) -> None:
    shutil.copytree(SAVED_MODEL, tmp_path / "m")
    e = engine(
        tmp_path,
        "name: tfs\nengine:\n  kind: tfserving\n  saved_model: m\n  model_name: hp2\n  rest_port: 9501\n"
        "  example_input: {instances: [1.0, 2.0]}\n  extra_args: [--enable_batching]\n",
    )
    plan = e.start({})
    assert [a.describe().split(" <- ")[0] for a in plan if isinstance(a, (Upload, UploadFile))] == [
        "upload: .orchestrator/tfs/model.upload/1/saved_model.pbtxt",
        f"upload: .orchestrator/tfs/monitoring.config (mode 0644, {len(monitoring_config())} bytes)",
        f"upload: .orchestrator/tfs/start.sh (mode 0700, {len(e.start_script())} bytes)",
    ]
    assert monitoring_config() == 'prometheus_config {\n  enable: true,\n  path: "/monitoring/prometheus/metrics"\n}\n'
    assert e.start_script().splitlines()[-1] == (
        "docker run -d --name orchestrator-tfs --restart unless-stopped --gpus=all -p 9501:8501 -p 8500:8500 "
        "-e MODEL_NAME=hp2 "
        '-v "$PWD"/model:/models/hp2 -v "$PWD"/monitoring.config:/models/monitoring.config:ro '
        "tensorflow/serving:2.19.0-gpu --monitoring_config_file=/models/monitoring.config --enable_batching"
    )
    checks = e.readiness("203.0.113.6", api_key=False)
    watch = (
        "; while polling, is it alive: remote: docker inspect -f '{{.State.Status}}' orchestrator-tfs 2>/dev/null "
        "| grep -qx running; if it fails, its log: remote: docker logs --tail 80 orchestrator-tfs 2>&1"
    )
    assert [c.describe() for c in checks] == [
        "http: GET http://203.0.113.6:9501/v1/models/hp2 expect tfs-available hp2, poll every 2s up to 600s" + watch,
        "http: POST http://203.0.113.6:9501/v1/models/hp2:predict expect tfs-predict, poll every 2s up to 60s" + watch,
    ]
    assert json.loads(checks[1].json_body or "") == {"instances": [1.0, 2.0]}
    target = e.scrape_target("203.0.113.6")
    assert (target.targets, target.metrics_path) == (("203.0.113.6:9501",), "/monitoring/prometheus/metrics")
    assert e.endpoint("203.0.113.6") == "http://203.0.113.6:9501/v1/models/hp2"


def test_start_scripts_are_valid_shell(tmp_path: Path, repo: Path) -> None:
    e = engine(
        tmp_path,
        f"name: trt\nengine:\n  kind: triton\n  model_repository: {repo}\n  extra_args: ['--log-info=$(reboot)']\n",
    )
    script = write(tmp_path / "start.sh", e.start_script())
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    assert "'--log-info=$(reboot)'" in e.start_script()  # quoted: reaches tritonserver literally


def test_upload_listing_skips_dotfiles_and_keeps_exec_bits(tmp_path: Path, repo: Path) -> None:
    write(repo / ".DS_Store", "x")
    write(repo / "identity_fp32" / "__pycache__" / "model.cpython-311.pyc", "x")
    tool = write(repo / "identity_fp32" / "1" / "run.sh", "#!/bin/sh\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    assert [rel for _, rel in files_under(repo)] == [
        "identity_fp32/1/model.py",
        "identity_fp32/1/run.sh",
        "identity_fp32/config.pbtxt",
    ]
    assert dirs_under(repo) == ["identity_fp32", "identity_fp32/1"]
    e = engine(tmp_path, f"name: trt\nengine:\n  kind: triton\n  model_repository: {repo}\n")
    modes = {a.dest.rsplit("/", 1)[1]: a.mode for a in e.start({}) if isinstance(a, UploadFile)}
    assert modes == {"model.py": 0o644, "run.sh": 0o755, "config.pbtxt": 0o644}
    assert (
        UploadFile(tmp_path / "gone", "x").describe()
        == f"upload: x <- {tmp_path / 'gone'} (mode 0644, missing locally)"
    )


def test_engines_refuse_a_config_of_another_kind(tmp_path: Path) -> None:
    cfg = DeploymentConfig.model_validate({"name": "v1", "engine": {"kind": "vllm", "model": "m"}})
    for cls in (TritonEngine, TfServingEngine):
        with pytest.raises(TypeError):
            cls(cfg)


# ---------------------------------------------------------------- readiness verdicts


def verdict(expect: str, code: int, body: object = None, arg: str = "m") -> tuple[bool, bool, str]:
    content = json.dumps(body).encode() if body is not None else b""
    v = EXPECTATIONS[expect](httpx.Response(code, content=content), arg)
    return v.ready, v.fatal, v.detail


def status(*versions: tuple[str, str, str, str]) -> dict[str, object]:
    return {
        "model_version_status": [
            {"version": v, "state": s, "status": {"error_code": c, "error_message": m}} for v, s, c, m in versions
        ]
    }


def test_triton_ready_verdicts() -> None:
    assert verdict("triton-ready", 200, arg="") == (True, False, "server ready")
    assert verdict("triton-ready", 200) == (True, False, "model m ready")
    assert verdict("triton-ready", 400, arg="") == (False, False, "HTTP 400: server not ready yet")
    unknown = {"error": "Request for unknown model: 'm' is not found"}
    assert verdict("triton-ready", 400, unknown)[:2] == (False, True)
    assert verdict("triton-ready", 503)[:2] == (False, False)


def test_tfserving_status_verdicts() -> None:
    assert verdict("tfs-available", 200, status(("1", "AVAILABLE", "OK", ""))) == (
        True,
        False,
        "model m version 1 AVAILABLE",
    )
    assert verdict("tfs-available", 200, status(("2", "LOADING", "OK", ""))) == (False, False, "version 2 LOADING")
    failed = verdict("tfs-available", 200, status(("1", "END", "INVALID_ARGUMENT", "Cannot assign a device")))
    assert failed[:2] == (False, True) and "INVALID_ARGUMENT: Cannot assign a device" in failed[2]
    mixed = status(("1", "END", "UNKNOWN", "x"), ("2", "AVAILABLE", "OK", ""))
    assert verdict("tfs-available", 200, mixed)[0] is True
    assert verdict("tfs-available", 404, {"error": "Could not find any versions of model m"}) == (
        False,
        False,
        "HTTP 404: Could not find any versions of model m",
    )
    assert verdict("tfs-available", 200, {"model_version_status": []}) == (False, False, "no model versions yet")


def test_tfserving_predict_verdicts() -> None:
    assert verdict("tfs-predict", 200, {"predictions": [2.5]})[0] is True
    assert verdict("tfs-predict", 200, {"outputs": {"y": [2.5]}})[0] is True
    assert verdict("tfs-predict", 200, {"other": 1})[:2] == (False, True)
    bad = verdict("tfs-predict", 400, {"error": "Missing 'inputs' or 'instances' key"})
    assert bad == (False, True, "HTTP 400: Missing 'inputs' or 'instances' key")
    assert verdict("tfs-predict", 404, {"error": "Servable not found"})[:2] == (False, False)


def test_triton_readiness_polls_through_400_until_200() -> None:
    answers = iter([httpx.ConnectError("refused"), httpx.Response(400), httpx.Response(400), httpx.Response(200)])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = httpx.Client(transport=httpx.MockTransport(handler))
    check = HttpCheck("GET", "http://h:8000/v2/health/ready", "triton-ready", wait=5.0, interval=0.01)
    assert run_check(check, {}, client=client).stdout == "server ready"


def test_a_failing_probe_asks_whether_the_engine_runs_ever_less_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polling every 20 ms, the remote liveness command runs on the first failed probe, then LIVENESS_PERIOD (here
    0.1 s) later, each gap twice the one before up to LIVENESS_MAX (here 0.3 s); the first `not alive` ends the
    wait with the engine's log."""
    import time

    import orchestrator.health as health

    monkeypatch.setattr(health, "LIVENESS_PERIOD", 0.1)
    monkeypatch.setattr(health, "LIVENESS_MAX", 0.3)
    polls: list[float] = []
    asked: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        polls.append(time.monotonic())
        return httpx.Response(503)

    def alive() -> bool:
        asked.append(time.monotonic())
        return len(asked) < 5  # the fifth question finds it gone

    client = httpx.Client(transport=httpx.MockTransport(handler))
    check = HttpCheck("GET", "http://h:8000/health", "status", wait=30.0, interval=0.02)
    with pytest.raises(EngineError) as err:
        run_check(check, {}, alive=alive, dead_log=lambda: "engine log tail", client=client)
    assert "the engine process exited while http://h:8000/health was not ready (HTTP 503)" in err.value.message
    assert err.value.details == "engine log tail"
    assert len(asked) == 5 and asked[0] - polls[0] < 0.2  # at once after the first failed probe
    gaps = [b - a for a, b in zip(asked, asked[1:], strict=False)]
    assert all(gap >= least for gap, least in zip(gaps, (0.1, 0.2, 0.3, 0.3), strict=True)), gaps
    assert gaps[1] < 0.3 + 0.2, gaps  # doubled once, not yet at the cap (a poll interval of slack)
    assert len(polls) >= 25  # the HTTP probe itself still ran every interval in between


def test_bad_example_input_fails_fast_with_a_hint() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "Failed to process element: 0 of 'instances' list."})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    check = HttpCheck("POST", "http://h:8501/v1/models/m:predict", "tfs-predict", json_body="{}", wait=30.0)
    with pytest.raises(EngineError) as err:
        run_check(check, {}, client=client)
    assert "Failed to process element" in err.value.message and "example_input" in (err.value.hint or "")


def test_fake_docker_takes_restart_policies_as_docker_does(tmp_path: Path) -> None:
    """The engines' `--restart unless-stopped` reaches the fake docker, which parses and records it like docker."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = dict(os.environ, MOCKHOST_HOME=str(tmp_path), MOCKCLOUD_PYTHON=sys.executable)

    def docker(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(REPO / "mockcloud" / "hostbin" / "docker"), *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)

    for args, error in (
        (["--rm", "--restart", "always"], "docker: conflicting options: cannot specify both --restart and --rm"),
        (["--restart", "sometimes"], "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', "),
        (["--restart", "always:3"], "maximum retry count can only be used with 'on-failure'"),
    ):
        bad = docker("run", "-d", *args, "busybox", "true")
        assert bad.returncode == 125 and error in bad.stderr, bad.stderr
    assert docker("run", "-d", "--name", "kept", "--restart", "unless-stopped", "busybox", "true").returncode == 0
    assert docker("run", "-d", "--name", "plain", "busybox", "true").returncode == 0
    policy = "{{json .HostConfig.RestartPolicy}}"
    assert docker("inspect", "-f", policy, "kept").stdout.strip() == '{"Name":"unless-stopped","MaximumRetryCount":0}'
    assert docker("inspect", "-f", policy, "plain").stdout.strip() == '{"Name":"no","MaximumRetryCount":0}'
    assert docker("rm", "-f", "kept", "plain").returncode == 0


def test_fake_docker_brings_unless_stopped_containers_back_after_a_reboot(tmp_path: Path) -> None:
    """The reason for `--restart unless-stopped`: after the mock host reboots, docker starts the container again;
    one without a policy, or one stopped with `docker stop`, stays exited."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = dict(os.environ, MOCKHOST_HOME=str(tmp_path), MOCKCLOUD_PYTHON=sys.executable)

    def docker(*args: str) -> str:
        cmd = [str(REPO / "mockcloud" / "hostbin" / "docker"), *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    docker("run", "-d", "--name", "kept", "--restart", "unless-stopped", "busybox", "sleep", "300")
    docker("run", "-d", "--name", "plain", "busybox", "sleep", "300")
    docker("run", "-d", "--name", "stopped", "--restart", "unless-stopped", "busybox", "sleep", "300")
    docker("stop", "-t", "0", "stopped")
    before = docker("inspect", "-f", "{{.State.Pid}}", "kept")
    from mockcloud.hostbase import tool_argv

    reboot = tool_argv("hostsys", "__reboot", str(tmp_path))
    try:
        subprocess.run(reboot, env=env, capture_output=True, text=True, timeout=120, check=True)
        state = "{{.State.Status}}"
        assert [docker("inspect", "-f", state, n) for n in ("kept", "plain", "stopped")] == [
            "running",
            "exited",
            "exited",
        ]
        assert docker("inspect", "-f", "{{.State.Pid}}", "kept") != before  # a new process: it was started again
    finally:
        docker("rm", "-f", "kept", "plain", "stopped")
