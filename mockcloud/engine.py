"""Mock vLLM OpenAI-compatible server: ``python -m mockcloud.engine serve MODEL [vllm flags]``.

Its flags are read in engine_vllm_config.py, its answers and failure texts are engine_vllm_text.py's, its log
lines engine_vllm_log.py's; here: the HTTP routes, the metrics, the start-up and the process's life."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from mockcloud.engine_vllm_config import VLLM_VERSION, EngineConfig, parse_config
from mockcloud.engine_vllm_log import log, log_ready, log_startup, uvicorn
from mockcloud.engine_vllm_text import ENGINE_CORE_FAILED, complete, failure_text, stream_chunks
from mockcloud.hostbase import read_knobs

_PROTECTED_PREFIXES = ("/v1", "/v2", "/inference", "/cohere")


class EngineMetrics:
    """The vLLM metric names the orchestrator and Prometheus rely on, in the engine's own registry."""

    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry()
        labels = ("model_name", "engine")
        self.labels = {"model_name": model_name, "engine": "0"}
        self.running = Gauge(
            "vllm:num_requests_running", "Requests in the running batch.", labels, registry=self.registry
        ).labels(**self.labels)
        self.waiting = Gauge("vllm:num_requests_waiting", "Queued requests.", labels, registry=self.registry).labels(
            **self.labels
        )
        self.kv_cache = Gauge(
            "vllm:kv_cache_usage_perc", "KV-cache usage, 1 = 100%.", labels, registry=self.registry
        ).labels(**self.labels)
        self.prompt_tokens = Counter(
            "vllm:prompt_tokens", "Prefill tokens processed.", labels, registry=self.registry
        ).labels(**self.labels)
        self.generation_tokens = Counter(
            "vllm:generation_tokens", "Generation tokens processed.", labels, registry=self.registry
        ).labels(**self.labels)
        self._success = Counter(
            "vllm:request_success", "Finished requests.", (*labels, "finished_reason"), registry=self.registry
        )
        for reason in ("stop", "length", "abort"):
            self._success.labels(finished_reason=reason, **self.labels)
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "End-to-end request latency.",
            labels,
            buckets=(0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        ).labels(**self.labels)

    def finished(self, prompt_tokens: int, completion_tokens: int, reason: str, seconds: float) -> None:
        self.prompt_tokens.inc(prompt_tokens)
        self.generation_tokens.inc(completion_tokens)
        self._success.labels(finished_reason=reason, **self.labels).inc()
        self.e2e.observe(seconds)


def _delays(cfg: EngineConfig) -> tuple[float, float]:
    """(time to first token, per-token delay) from the host's knobs, read per request so a test can change them."""
    knobs = read_knobs(cfg.host_home) if cfg.host_home else cfg.knobs
    return float(knobs.get("engine_ttft") or 0), float(knobs.get("engine_token_delay") or 0)


def _error(message: str, kind: str, code: int, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class EngineServer(ThreadingHTTPServer):
    """The HTTP side of the mock engine; handlers reach config and metrics through it."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], cfg: EngineConfig, metrics: EngineMetrics) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.ready_at = time.monotonic()
        self.created = int(time.time())
        super().__init__(address, EngineHandler)


class EngineHandler(BaseHTTPRequestHandler):
    """vLLM's routes: /health, /ping, /version, /metrics, /v1/models, /v1/(chat/)completions."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: EngineServer

    def version_string(self) -> str:
        return "uvicorn"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        phrase = self.responses.get(int(code), ("",))[0] if str(code).isdigit() else ""
        host, port = self.client_address[:2]
        uvicorn(f'{host}:{port} - "{self.requestline}" {code} {phrase}')

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        sys.stderr.write(f"WARNING:  {format % args}\n")

    def _send(self, code: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, payload: Any) -> None:
        self._send(code, json.dumps(payload).encode())

    def _authorized(self, path: str) -> bool:
        keys = self.server.cfg.api_keys
        if not keys or not path.startswith(_PROTECTED_PREFIXES):
            return True
        if self.headers.get("Authorization", "") in {f"Bearer {k}" for k in keys}:
            return True
        self._json(401, {"error": "Unauthorized"})
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self.path.split("?", 1)[0]
        if not self._authorized(path):
            return
        cfg, server = self.server.cfg, self.server
        if path == "/health":
            fail_after = cfg.knobs.get("engine_health_fail_after")
            dead = fail_after is not None and time.monotonic() - server.ready_at >= float(fail_after)
            self._send(503 if dead else 200)
        elif path == "/ping":
            self._send(200)
        elif path == "/version":
            self._json(200, {"version": VLLM_VERSION})
        elif path == "/metrics":
            self._send(200, generate_latest(server.metrics.registry), CONTENT_TYPE_LATEST)
        elif path == "/v1/models":
            self._json(200, {"object": "list", "data": [self._model_card(name) for name in cfg.served_names]})
        elif path in ("/v1/completions", "/v1/chat/completions"):
            self._json(405, {"detail": "Method Not Allowed"})
        else:
            self._json(404, {"detail": "Not Found"})

    def _model_card(self, name: str) -> dict[str, Any]:
        created = self.server.created
        permission = {
            "id": f"modelperm-mock{created}",
            "object": "model_permission",
            "created": created,
            "allow_create_engine": False,
            "allow_sampling": True,
            "allow_logprobs": True,
            "allow_search_indices": False,
            "allow_view": True,
            "allow_fine_tuning": False,
            "organization": "*",
            "group": None,
            "is_blocking": False,
        }
        return {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "root": self.server.cfg.model,
            "parent": None,
            "max_model_len": self.server.cfg.max_model_len,
            "permission": [permission],
        }

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        if not self._authorized(path):
            return
        if path in ("/v1/completions", "/v1/chat/completions"):
            self._completion(raw, chat=path.endswith("chat/completions"))
        elif path == "/ping":
            self._send(200)
        elif path in ("/health", "/version", "/metrics", "/v1/models"):
            self._json(405, {"detail": "Method Not Allowed"})
        else:
            self._json(404, {"detail": "Not Found"})

    def _completion(self, raw: bytes, chat: bool) -> None:
        cfg, metrics = self.server.cfg, self.server.metrics
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
        except ValueError as exc:
            self._json(400, _error(f"Invalid request body: {exc}", "BadRequestError", 400))
            return
        model = body.get("model") or cfg.served_names[0]
        if model not in cfg.served_names:
            self._json(404, _error(f"The model `{model}` does not exist.", "NotFoundError", 404, "model"))
            return
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            self._json(400, _error(f"max_tokens must be at least 1, got {max_tokens}.", "BadRequestError", 400))
            return
        started = time.monotonic()
        metrics.running.inc()
        try:
            response, prompt_tokens, completion_tokens, reason = complete(body, chat, model, int(time.time()))
            if prompt_tokens + (max_tokens or 0) > cfg.max_model_len:
                self._json(
                    400,
                    _error(
                        f"This model's maximum context length is {cfg.max_model_len} tokens. However, "
                        f"you requested {prompt_tokens + (max_tokens or 0)} tokens ({prompt_tokens} in the "
                        f"messages, {max_tokens} in the completion). Please reduce the length of the "
                        "messages or completion.",
                        "BadRequestError",
                        400,
                    ),
                )
                return
            ttft, per_token = _delays(cfg)
            if body.get("stream"):
                options = body.get("stream_options")
                usage = bool(isinstance(options, dict) and options.get("include_usage"))
                self._stream(response, chat, ttft, per_token, usage)
            else:
                time.sleep(ttft + per_token * max(0, completion_tokens - 1))
                self._json(200, response)
            metrics.finished(prompt_tokens, completion_tokens, reason, time.monotonic() - started)
        finally:
            metrics.running.dec()

    def _stream(self, response: dict[str, Any], chat: bool, ttft: float, per_token: float, usage: bool) -> None:
        """Server-sent events: the chunks of ``stream_chunks``, then ``data: [DONE]``; the first word leaves after
        ``ttft`` seconds, each next one ``per_token`` after the previous."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        chunks = stream_chunks(response, chat, usage)
        paced = len(chunks) - 1 if usage else len(chunks)  # every chunk but the usage one is a token's (or the end)
        # Each token is due at a fixed time from the request's start, so a late wake-up does not push back the rest.
        t0 = time.monotonic()
        for i, chunk in enumerate(chunks):
            if i < paced:
                due = t0 + ttft + per_token * min(i, max(0, paced - 2))
                time.sleep(max(0.0, due - time.monotonic()))
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def do_PUT(self) -> None:  # noqa: N802 - http.server naming
        self._json(405, {"detail": "Method Not Allowed"})

    do_DELETE = do_PUT


def _register_pid(cfg: EngineConfig) -> list[Path]:
    """Write the pid file and the host's run/pids entry (so the host's poweroff finds this engine)."""
    pid = os.getpid()
    written: list[Path] = []
    entries: list[tuple[Path, str]] = []
    if cfg.pid_file:
        entries.append((cfg.pid_file, f"{pid}\n"))
    if cfg.host_home and (cfg.host_home / "run" / "pids").is_dir():
        claim = int(float(cfg.knobs["gpu_mem_mib"]) * cfg.gpu_memory_utilization)
        info = {"pid": pid, "kind": "vllm", "model": cfg.model, "port": cfg.bind_port, "gpu_mem_mib": claim}
        entries.append((cfg.host_home / "run" / "pids" / str(pid), json.dumps(info) + "\n"))
    for path, content in entries:
        with contextlib.suppress(OSError):
            path.write_text(content)
            written.append(path)
    return written


def _unregister(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            text = path.read_text()
            if text.strip() == str(os.getpid()) or f'"pid": {os.getpid()},' in text:
                path.unlink()


def serve(cfg: EngineConfig) -> int:
    """Log like vLLM, stay unbound for the start-up delay (clients see connection refused), then serve."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    registered = _register_pid(cfg)
    try:
        log_startup(cfg)
        delay = float(cfg.knobs.get("engine_startup_delay") or 0)
        failure = cfg.knobs.get("engine_fail")
        if failure:
            if stop.wait(delay / 2):
                return 0
            log("EngineCore_DP0", "ERROR", "core.py:708", "EngineCore failed to start.")
            sys.stderr.write(
                'Traceback (most recent call last):\n  File "vllm/v1/engine/core.py", line 699, in run_engine_core\n'
            )
            sys.stderr.write(failure_text(str(failure), cfg, dict(os.environ)) + "\n")
            sys.stderr.write(ENGINE_CORE_FAILED + "\n")
            sys.stderr.flush()
            return 1
        if stop.wait(delay):
            return 0
        try:
            server = EngineServer((cfg.bind_host, cfg.bind_port), cfg, EngineMetrics(cfg.served_names[0]))
        except OSError as exc:
            log("APIServer", "ERROR", "api_server.py:1912", f"OSError: [Errno {exc.errno}] {exc.strerror}")
            return 1
        log_ready(cfg, delay)
        worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        worker.start()
        stop.wait()
        uvicorn("Shutting down")
        server.shutdown()
        server.server_close()
        uvicorn(f"Finished server process [{os.getpid()}]")
        return 0
    finally:
        _unregister(registered)


def main(argv: list[str] | None = None) -> int:
    """``vllm``'s command line, as far as the orchestrator uses it."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-v"]):
        print(VLLM_VERSION)
        return 0
    if args[:1] != ["serve"]:
        sys.stderr.write(
            "usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...\n"
            "mockcloud stand-in: only `vllm serve` and `vllm --version` are emulated\n"
        )
        return 2
    return serve(parse_config(args[1:], dict(os.environ)))


if __name__ == "__main__":
    raise SystemExit(main())
