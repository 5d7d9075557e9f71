"""Mock TensorFlow Serving: ``python -m mockcloud.engine_tfserving [tensorflow_model_server flags]``.

Like the tensorflow/serving image: ``--model_name=$MODEL_NAME --model_base_path=$MODEL_BASE_PATH/$MODEL_NAME``
come first and the container's arguments override them. It reads the mounted model base path (numeric version
folders with saved_model.pb/.pbtxt), reports the latest version LOADING then AVAILABLE, answers ``:predict`` as
half_plus_two (y = 0.5 * x + 2, TF Serving's own test model) and exposes ``:tensorflow:*`` metrics at the path of
``--monitoring_config_file`` only. A graph pinned to /device:GPU:N without a GPU fails as in engines.md F13.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from mockcloud.engine_common import (
    JsonHandler,
    RawMetrics,
    Servers,
    emit,
    first,
    has_gpu,
    host_path,
    knobs,
    parse_pbtxt,
    registered,
    stop_event,
)

VERSION = "2.19.0"
FLAGS = {
    "port", "grpc_socket_path", "rest_api_port", "rest_api_num_threads", "rest_api_timeout_in_ms",
    "rest_api_enable_cors_support", "enable_batching", "batching_parameters_file", "model_config_file",
    "model_config_file_poll_wait_seconds", "model_name", "model_base_path", "max_num_load_retries",
    "load_retry_interval_micros", "file_system_poll_wait_seconds", "flush_filesystem_caches",
    "tensorflow_session_parallelism", "tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism",
    "per_process_gpu_memory_fraction", "saved_model_tags", "grpc_channel_arguments", "enable_model_warmup",
    "monitoring_config_file", "xla_cpu_compilation_enabled", "enable_profiler", "ssl_config_file",
    "platform_config_file", "num_request_iterations_for_warmup", "version",
    "allow_version_labels_for_unavailable_models",
}  # fmt: skip
LATENCY_BUCKETS = (10.0, 18.0, 32.4, 58.3, 105.0, 189.0, 340.2, 612.3, 1102.1, 1983.8, 3570.8)


def log(level: str, source: str, message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S") + f".{int(time.time() % 1 * 1e6):06d}"
    emit(f"{stamp}: {level} {source}] {message}", err=level != "I")


def parse_flags(argv: list[str], environ: dict[str, str]) -> dict[str, str]:
    """The image's defaults, then the container arguments (later flags win); raises ValueError on unknown."""
    name, base = environ.get("MODEL_NAME") or "model", environ.get("MODEL_BASE_PATH") or "/models"
    words = ["--port=8500", "--rest_api_port=8501", f"--model_name={name}", f"--model_base_path={base}/{name}"]
    flags: dict[str, str] = {}
    for word in words + argv:
        key, eq, value = word.removeprefix("--").partition("=")
        if not word.startswith("--") or key not in FLAGS:
            raise ValueError(f"unknown argument: {word}")
        flags[key] = value if eq else "true"
    return flags


def metrics_path(config_file: Path) -> str | None:
    """The Prometheus path from a MonitoringConfig text proto (None when disabled)."""
    prom = first(parse_pbtxt(config_file.read_text()), "prometheus_config", {})
    if str(first(prom, "enable", "false")).lower() != "true":
        return None
    return str(first(prom, "path", "/monitoring/prometheus/metrics"))


def half_plus_two(value: Any) -> Any:
    if isinstance(value, list):
        return [half_plus_two(v) for v in value]
    if isinstance(value, dict):
        return {k: half_plus_two(v) for k, v in value.items()}
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"JSON Value: {json.dumps(value)} Type: {type(value).__name__} is not of expected type: float")
    return 0.5 * value + 2.0


class TfServing:
    def __init__(self, name: str, version: str, path: str | None) -> None:
        self.name, self.version, self.path = name, version, path
        self.state, self.error_code, self.error = "START", "OK", ""
        self.metrics = RawMetrics()
        for family, kind, text in (
            (":tensorflow:serving:request_count", "counter", "The total number of requests."),
            (":tensorflow:serving:request_latency", "histogram", "Distribution of wall time (in microseconds)"),
            (":tensorflow:serving:runtime_latency", "histogram", "Distribution of wall time (in microseconds)"),
            (":tensorflow:serving:request_example_count_total", "counter", "The total number of tensorflow.Examples."),
            (":tensorflow:cc:saved_model:load_attempt_count", "counter", "The number of times a SavedModel was loaded"),
            (":tensorflow:cc:saved_model:load_latency", "counter", "Latency in microseconds for SavedModels loaded"),
            (":tensorflow:core:graph_runs", "counter", "The number of graph executions used to collect stats."),
        ):
            self.metrics.declare(family, kind, text)

    def status(self) -> dict[str, Any]:
        status = {"error_code": self.error_code, "error_message": self.error}
        return {"model_version_status": [{"version": self.version, "state": self.state, "status": status}]}


class TfHandler(JsonHandler):
    server: Any  # ThreadingHTTPServer with .tfs

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        tfs: TfServing = self.server.tfs
        path = self.path.split("?", 1)[0]
        model = f"/v1/models/{tfs.name}"
        if tfs.path and path == tfs.path:
            self.send(200, tfs.metrics.render(), CONTENT_TYPE_LATEST)
        elif path in (model, f"{model}/versions/{tfs.version}") and tfs.version:
            self.json(200, tfs.status())
        elif path == f"{model}/metadata" and tfs.state == "AVAILABLE":
            spec = {"name": tfs.name, "signature_name": "", "version": tfs.version}
            x, y = ({"dtype": "DT_FLOAT", "tensor_shape": {"unknown_rank": True}, "name": n} for n in ("x:0", "y:0"))
            sig = {"inputs": {"x": x}, "outputs": {"y": y}, "method_name": "tensorflow/serving/predict"}
            self.json(
                200, {"model_spec": spec, "metadata": {"signature_def": {"signature_def": {"serving_default": sig}}}}
            )
        elif path.startswith("/v1/models/"):
            self.json(404, {"error": f"Could not find any versions of model {path.split('/')[3]}"})
        else:
            self.json(404, {"error": f"Malformed request: GET {path}"})

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        tfs: TfServing = self.server.tfs
        raw = self.body()
        path = self.path.split("?", 1)[0]
        target, _, verb = path.rpartition(":")
        if verb != "predict" or not target.startswith("/v1/models/"):
            self.json(404 if verb != "predict" else 400, {"error": f"Malformed request: POST {path}"})
            return
        if target not in (f"/v1/models/{tfs.name}", f"/v1/models/{tfs.name}/versions/{tfs.version}"):
            self.json(404, {"error": f"Servable not found for request: Latest({target.split('/')[3]})"})
            return
        if tfs.state != "AVAILABLE":
            self.json(404, {"error": f"Servable not found for request: Latest({tfs.name})"})
            return
        self._predict(tfs, raw)

    def _predict(self, tfs: TfServing, raw: bytes) -> None:
        started = time.monotonic()
        labels = {"model_name": tfs.name}
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            self._fail(tfs, "JSON Parse error: Invalid value. at offset: 0")
            return
        keys = {"instances", "inputs"} & set(body if isinstance(body, dict) else {})
        if len(keys) != 1:
            self._fail(
                tfs,
                "Missing 'inputs' or 'instances' key"
                if not keys
                else "Not formatted correctly expecting only one of 'inputs' or 'instances' keys exists",
            )
            return
        key = keys.pop()
        try:
            result = half_plus_two(body[key])
        except TypeError as exc:
            self._fail(tfs, f"Failed to process element: 0 of '{key}' list. Error: Invalid argument: {exc}")
            return
        micros = (time.monotonic() - started) * 1e6 + 40.0
        tfs.metrics.inc(":tensorflow:serving:request_count", {**labels, "status": "OK"})
        tfs.metrics.observe(
            ":tensorflow:serving:request_latency",
            {**labels, "API": "predict", "entrypoint": "REST"},
            micros,
            LATENCY_BUCKETS,
        )
        tfs.metrics.observe(
            ":tensorflow:serving:runtime_latency",
            {**labels, "API": "Predict", "runtime": "TF1"},
            micros - 10.0,
            LATENCY_BUCKETS,
        )
        count = len(body[key]) if isinstance(body[key], list) else 1
        tfs.metrics.inc(":tensorflow:serving:request_example_count_total", {"model": tfs.name}, float(count))
        tfs.metrics.inc(":tensorflow:core:graph_runs", {})
        self.json(200, {"predictions" if key == "instances" else "outputs": result})

    def _fail(self, tfs: TfServing, message: str) -> None:
        tfs.metrics.inc(":tensorflow:serving:request_count", {"model_name": tfs.name, "status": "INVALID_ARGUMENT"})
        self.json(400, {"error": message})


def _load_error(version_dir: Path) -> str | None:
    """Why this SavedModel would not load here (None: it loads)."""
    pb, pbtxt = version_dir / "saved_model.pb", version_dir / "saved_model.pbtxt"
    if pb.is_file():
        graph = pb.read_bytes()
    elif pbtxt.is_file():
        try:
            parse_pbtxt(pbtxt.read_text())
        except ValueError as exc:
            return f"DATA_LOSS: Can't parse {pbtxt.name} as text proto: {exc}"
        graph = pbtxt.read_bytes()
    else:
        return f"NOT_FOUND: Could not find SavedModel .pb or .pbtxt at supplied export directory path: {version_dir}"
    if b"/device:GPU:" in graph and not has_gpu():
        return (
            "INVALID_ARGUMENT: Cannot assign a device for operation 'a': Operation was explicitly assigned to "
            "/device:GPU:0 but available devices are [ /job:localhost/replica:0/task:0/device:CPU:0 ]. Make sure "
            "the device specification refers to a valid device."
        )
    return None


def serve(flags: dict[str, str]) -> int:
    stop = stop_event()
    name, base = flags["model_name"], flags["model_base_path"]
    path = None
    if "monitoring_config_file" in flags:
        try:
            path = metrics_path(host_path(flags["monitoring_config_file"]))
        except (OSError, ValueError) as exc:
            emit(f"Failed to start server. Error: INVALID_ARGUMENT: monitoring config: {exc}", err=True)
            return 255
    log(
        "I",
        "tensorflow_serving/model_servers/server.cc:77",
        f"Building single TensorFlow model file config:  model_name: {name} model_base_path: {base}",
    )
    log("I", "tensorflow_serving/model_servers/server_core.cc:594", f" (Re-)adding model: {name}")
    folder = host_path(base)
    found = folder.iterdir() if folder.is_dir() else iter(())
    versions = sorted((d for d in found if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))
    tfs = TfServing(name, versions[-1].name if versions else "", path)
    delay = float(knobs().get("engine_startup_delay") or 0)
    with registered("tfserving", int(int(knobs()["gpu_mem_mib"]) * 0.9) if has_gpu() else 0):
        if stop.wait(delay / 2):
            return 0
        servers = Servers()
        try:
            servers.start(8501, TfHandler, tfs=tfs)
        except OSError as exc:
            emit(f"Failed to start server. Error: UNAVAILABLE: Could not bind the REST API: {exc.strerror}", err=True)
            return 255
        try:
            if not versions:
                log(
                    "W",
                    "tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc:267",
                    f"No versions of servable {name} found under base path {base}. Did you forget to name your "
                    "leaf directory as a number (eg. '/1/')?",
                )
                stop.wait()
                return 0
            servable = f"{{name: {name} version: {tfs.version}}}"
            tfs.state = "LOADING"
            log("I", "tensorflow_serving/core/loader_harness.cc:74", f"Loading servable version {servable}")
            log(
                "I",
                "external/org_tensorflow/tensorflow/cc/saved_model/reader.cc:83",
                f"Reading SavedModel from: {base}/{tfs.version}",
            )
            if stop.wait(delay / 2):
                return 0
            error = _load_error(versions[-1])
            model_path = {"model_path": f"{base}/{tfs.version}"}
            tfs.metrics.inc(
                ":tensorflow:cc:saved_model:load_attempt_count",
                {**model_path, "status": "fail" if error else "success"},
            )
            if error:
                tfs.state, tfs.error_code, tfs.error = "END", error.split(":")[0], error.split(": ", 1)[1]
                log("E", "tensorflow_serving/util/retrier.cc:40", f"Loading servable: {servable} failed: {error}")
                emit(
                    "Failed to start server. Error: UNKNOWN: 1 servable(s) did not become available: "
                    f"{{{{{servable} due to error: {error}}}, }}",
                    err=True,
                )
                return 255
            tfs.metrics.inc(":tensorflow:cc:saved_model:load_latency", model_path, delay * 1e6 / 2)
            tfs.state = "AVAILABLE"
            log("I", "tensorflow_serving/core/loader_harness.cc:95", f"Successfully loaded servable version {servable}")
            log("I", "tensorflow_serving/model_servers/server.cc:423", "Running gRPC ModelServer at 0.0.0.0:8500 ...")
            log("I", "tensorflow_serving/model_servers/server.cc:444", "Exporting HTTP/REST API at:localhost:8501 ...")
            emit("[evhttp_server.cc : 245] NET_LOG: Entering the event loop ...")
            stop.wait()
            return 0
        finally:
            servers.close()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--version" in args:
        print(f"TensorFlow ModelServer: {VERSION}-rc0+dev.sha.mock\nTensorFlow Library: {VERSION}")
        return 0
    try:
        flags = parse_flags(args, dict(os.environ))
    except ValueError as exc:
        emit(f"{exc}\nusage: tensorflow_model_server [--flag=value ...]", err=True)
        return 255
    return serve(flags)


if __name__ == "__main__":
    raise SystemExit(main())
