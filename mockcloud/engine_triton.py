"""Mock NVIDIA Triton: ``python -m mockcloud.engine_triton tritonserver --model-repository=/models [flags]``.

Reads the mounted model repository like tritonserver (config.pbtxt, numeric version folders), prints its model
table, serves KServe v2 over HTTP (every model answers as an identity of its first input) and Prometheus
metrics (nv_inference_*, nv_gpu_*). A model that cannot load is UNAVAILABLE; with --exit-on-error (default)
the server then exits, as Triton does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from mockcloud.engine_common import (
    JsonHandler,
    RawMetrics,
    Servers,
    emit,
    has_gpu,
    host_path,
    knobs,
    log_stamp,
    registered,
    stop_event,
)
from mockcloud.engine_triton_models import Model, input_problem, load_model, model_table, unavailable

TRITON_VERSION, RELEASE = "2.60.0", "25.08"


def log(level: str, source: str, message: str) -> None:
    emit(f"{level}{log_stamp()} {os.getpid()} {source}] {message}", err=level != "I")


def _bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tritonserver", add_help=False)
    parser.add_argument("--model-repository", "--model-store", action="append", default=[])
    parser.add_argument("--model-control-mode", default="none")
    parser.add_argument("--load-model", action="append", default=[])
    for flag, default in (("--strict-readiness", "true"), ("--exit-on-error", "true"), ("--allow-metrics", "true")):
        parser.add_argument(flag, type=_bool, default=_bool(default))
    parser.add_argument("--allow-gpu-metrics", type=_bool, default=True)
    return parser.parse_known_args(argv)[0]


class Triton:
    """The server's state, shared by the HTTP handlers."""

    def __init__(self, models: dict[str, Model], strict: bool) -> None:
        self.models = models
        self.strict = strict
        self.loaded = False
        self.metrics = RawMetrics()
        self.lock = threading.Lock()
        for name, kind, text in METRIC_FAMILIES:
            self.metrics.declare(name, kind, text)

    def ready(self) -> bool:
        if not self.loaded:
            return False
        return not self.strict or all(m.state == "READY" for m in self.models.values())

    def zero_metrics(self, model: Model) -> None:
        labels = {"model": model.name, "version": model.versions[-1]}
        for name, _kind, _help in METRIC_FAMILIES:
            if name.startswith("nv_inference") and name != "nv_inference_request_failure":
                self.metrics.set(name, labels, 0.0)

    def gpu_metrics(self) -> None:
        k = knobs()
        seed = hashlib.sha256(f"{os.environ.get('MOCKHOST_IP', '')}/0".encode()).hexdigest()
        gpu = {"gpu_uuid": f"GPU-{seed[:8]}-{seed[8:12]}-{seed[12:16]}-{seed[16:20]}-{seed[20:32]}"}
        total = int(k["gpu_mem_mib"]) * 1024 * 1024
        for name, value in (
            ("nv_gpu_utilization", 0.0),
            ("nv_gpu_memory_total_bytes", float(total)),
            ("nv_gpu_memory_used_bytes", float(1200 * 1024 * 1024)),
            ("nv_gpu_power_usage", 78.42),
            ("nv_gpu_power_limit", 350.0),
        ):
            self.metrics.set(name, gpu, value)
        self.metrics.inc("nv_energy_consumption", gpu, 0.0)


METRIC_FAMILIES = (
    ("nv_inference_request_success", "counter", "Number of successful inference requests, all batch sizes"),
    ("nv_inference_request_failure", "counter", "Number of failed inference requests, all batch sizes"),
    ("nv_inference_count", "counter", "Number of inferences performed (does not include cached requests)"),
    ("nv_inference_exec_count", "counter", "Number of model executions performed (does not include cached requests)"),
    ("nv_inference_pending_request_count", "gauge", "Instantaneous number of pending requests awaiting execution"),
    ("nv_inference_request_duration_us", "counter", "Cumulative inference request duration in microseconds"),
    ("nv_inference_queue_duration_us", "counter", "Cumulative inference queuing duration in microseconds"),
    ("nv_inference_compute_infer_duration_us", "counter", "Cumulative compute inference duration in microseconds"),
    ("nv_gpu_utilization", "gauge", "GPU utilization rate [0.0 - 1.0)"),
    ("nv_gpu_memory_total_bytes", "gauge", "GPU total memory, in bytes"),
    ("nv_gpu_memory_used_bytes", "gauge", "GPU used memory, in bytes"),
    ("nv_gpu_power_usage", "gauge", "GPU power usage in watts"),
    ("nv_gpu_power_limit", "gauge", "GPU power management limit in watts"),
    ("nv_energy_consumption", "counter", "GPU energy consumption in joules since the Triton Server started"),
)


class TritonHandler(JsonHandler):
    server: Any  # ThreadingHTTPServer with .triton

    def _model(self, parts: list[str]) -> Model | None:
        model = self.server.triton.models.get(parts[2]) if len(parts) > 2 else None
        if model is None:
            self.json(400, {"error": f"Request for unknown model: '{parts[2] if len(parts) > 2 else ''}' is not found"})
        return model

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        triton: Triton = self.server.triton
        path = self.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        if getattr(self.server, "metrics_port", False):  # the metrics service serves nothing else
            if path == "/metrics":
                self.send(200, triton.metrics.render(), CONTENT_TYPE_LATEST)
            else:
                self.send(404)
        elif path == "/v2":
            self.json(
                200,
                {
                    "name": "triton",
                    "version": TRITON_VERSION,
                    "extensions": ["classification", "model_repository", "statistics"],
                },
            )
        elif path == "/v2/health/live":
            self.send(200)
        elif path == "/v2/health/ready":
            self.send(200 if triton.ready() else 400)
        elif parts[:2] == ["v2", "models"] and parts[-1] == "ready":
            model = self._model(parts)
            if model is not None:
                self.send(200 if model.state == "READY" else 400)
        elif parts[:2] == ["v2", "models"] and (model := self._model(parts)) is not None:
            if model.state != "READY":
                self.json(400, {"error": f"Request for unknown model: '{model.name}' has no available versions"})
            elif parts[-1] == "config":
                self.json(200, model.config)
            else:
                meta = {"name": model.name, "versions": model.versions, "platform": model.platform}
                self.json(200, {**meta, "inputs": model.inputs, "outputs": model.outputs})
        elif parts[:2] != ["v2", "models"]:
            self.json(404, {"error": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        triton: Triton = self.server.triton
        raw = self.body()
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if parts == ["v2", "repository", "index"]:
            rows = [{"name": m.name, "version": m.versions[-1], "state": m.state} for m in triton.models.values()]
            for row, model in zip(rows, triton.models.values(), strict=True):
                if model.reason:
                    row["reason"] = model.reason
            self.json(200, rows)
        elif parts[:2] == ["v2", "models"] and parts[-1] == "infer" and (model := self._model(parts)) is not None:
            self._infer(triton, model, raw)
        else:
            self.json(404, {"error": "Not Found"})

    def _infer(self, triton: Triton, model: Model, raw: bytes) -> None:
        labels = {"model": model.name, "version": model.versions[-1]}
        if model.state != "READY":
            self.json(400, {"error": f"Request for unknown model: '{model.name}' has no available versions"})
            return
        started = time.monotonic()
        try:
            body = json.loads(raw or b"{}")
            inputs = {i["name"]: i for i in body["inputs"]}
            given = [inputs[t["name"]] for t in model.inputs]
        except (ValueError, KeyError, TypeError) as exc:
            triton.metrics.inc("nv_inference_request_failure", {**labels, "reason": "OTHER"})
            wanted = ", ".join(t["name"] for t in model.inputs)
            self.json(400, {"error": f"[request id: <id_unknown>] expected inputs {wanted} ({exc!s})"})
            return
        problem = input_problem(model, body["inputs"], given)
        if problem:
            triton.metrics.inc("nv_inference_request_failure", {**labels, "reason": "OTHER"})
            self.json(400, {"error": problem})
            return
        delay = float(knobs().get("engine_infer_delay") or 0.0)
        if delay > 0:
            time.sleep(delay)
        outputs = []
        for i, spec in enumerate(model.outputs):
            source = given[min(i, len(given) - 1)] if given else {"shape": [0], "data": []}
            outputs.append(
                {
                    "name": spec["name"],
                    "datatype": spec["datatype"],
                    "shape": source.get("shape"),
                    "data": source.get("data"),
                }
            )
        batch = int((given[0].get("shape") or [1])[0]) if given and model.max_batch_size else 1
        micros = (time.monotonic() - started) * 1e6 + 50.0
        for name, value in (
            ("nv_inference_request_success", 1.0),
            ("nv_inference_count", float(batch)),
            ("nv_inference_exec_count", 1.0),
            ("nv_inference_request_duration_us", micros),
            ("nv_inference_queue_duration_us", 5.0),
            ("nv_inference_compute_infer_duration_us", micros - 5.0),
        ):
            triton.metrics.inc(name, labels, value)
        reply = {"model_name": model.name, "model_version": model.versions[-1], "outputs": outputs}
        self.json(200, reply | ({"id": body["id"]} if "id" in body else {}))


def _banner() -> None:
    emit("\n=============================\n== Triton Inference Server ==\n=============================\n")
    emit(f"NVIDIA Release {RELEASE} (build 000000000)\nTriton Server Version {TRITON_VERSION}\n")
    if not has_gpu():
        emit("WARNING: The NVIDIA Driver was not detected.  GPU functionality will not be available.\n")


def serve(argv: list[str]) -> int:
    """tritonserver: load the models (start-up delay knob), print the table, serve or exit on error."""
    stop = stop_event()
    _banner()
    opts = parse_args(argv)
    k = knobs()
    repos = [(r, host_path(r)) for r in opts.model_repository]
    if not repos or not all(p.is_dir() for _, p in repos):
        missing = next((r for r, p in repos if not p.is_dir()), "")
        emit(f"error: creating server: Invalid argument - failed to stat file {missing or '<no --model-repository>'}")
        return 1
    found = {d.name: d for _, p in repos for d in sorted(p.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    explicit = opts.model_control_mode == "explicit"
    wanted = list(found) if not explicit or "*" in opts.load_model else opts.load_model
    triton = Triton({n: Model(n, versions=["1"]) for n in wanted}, opts.strict_readiness)
    delay = float(k.get("engine_startup_delay") or 0)
    with registered("triton", 1200 if has_gpu() else 0):
        if stop.wait(delay / 2):
            return 0
        servers = Servers()
        try:
            servers.start(8000, TritonHandler, triton=triton)
            if opts.allow_metrics:
                servers.start(8002, TritonHandler, triton=triton, metrics_port=True)
        except OSError as exc:
            servers.close()
            emit(f"error: creating server: Internal - failed to start HTTP service: {exc.strerror}")
            return 1
        try:
            if stop.wait(delay / 2):
                return 0
            for name in wanted:
                model = (
                    load_model(found[name], k.get("triton_model_fail"))
                    if name in found
                    else unavailable(
                        Model(name, versions=["1"]),
                        f"Invalid argument: failed to poll model '{name}': not found in any model repository",
                    )
                )
                triton.models[name] = model
                if model.state == "READY":
                    triton.zero_metrics(model)
                    log("I", "model_lifecycle.cc:849", f"successfully loaded '{name}'")
                else:
                    log(
                        "E",
                        "model_lifecycle.cc:654",
                        f"failed to load '{name}' version {model.versions[-1]}: {model.reason}",
                    )
            if has_gpu() and opts.allow_gpu_metrics:
                triton.gpu_metrics()
            log("I", "server.cc:674", "\n" + model_table(list(triton.models.values())))
            failed = [m for m in triton.models.values() if m.state != "READY"]
            if failed and opts.exit_on_error:
                log("I", "server.cc:312", "Waiting for in-flight requests to complete.")
                log("I", "server.cc:328", "All models are stopped, unloading models")
                emit("error: creating server: Internal - failed to load all models")
                return 1
            triton.loaded = True
            log("I", "grpc_server.cc:2562", "Started GRPCInferenceService at 0.0.0.0:8001")
            log("I", "http_server.cc:4832", "Started HTTPService at 0.0.0.0:8000")
            log("I", "http_server.cc:358", "Started Metrics Service at 0.0.0.0:8002")
            stop.wait()
            log("I", "server.cc:312", "Waiting for in-flight requests to complete.")
            return 0
        finally:
            servers.close()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:  # the image's entrypoint with no command: banner, then the (non-interactive) shell exits
        _banner()
        return 0
    if args[0] != "tritonserver":
        emit(f"/opt/nvidia/nvidia_entrypoint.sh: line 67: exec: {args[0]}: not found", err=True)
        return 127
    return serve(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
