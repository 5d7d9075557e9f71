"""Mock vLLM OpenAI-compatible server: ``python -m mockcloud.engine serve MODEL [vllm flags]``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
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

from mockcloud.hostbase import DEFAULT_KNOBS, read_knobs

VLLM_VERSION = "0.11.0"
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
DEFAULT_MAX_MODEL_LEN = 32768
REPLY_TEXT = "This is a deterministic reply from the mock vLLM engine running on a mock GPU host ."
REPLY_WORDS = tuple(REPLY_TEXT.split())
ENGINE_CORE_FAILED = "RuntimeError: Engine core initialization failed. See root cause above."
_PROTECTED_PREFIXES = ("/v1", "/v2", "/inference", "/cohere")
# vLLM flags that take a value: declared so that their values are never mistaken for the positional model.
_VALUE_FLAGS = (
    "--tensor-parallel-size",
    "-tp",
    "--pipeline-parallel-size",
    "-pp",
    "--data-parallel-size",
    "-dp",
    "--max-num-seqs",
    "--max-num-batched-tokens",
    "--kv-cache-dtype",
    "--quantization",
    "-q",
    "--generation-config",
    "--download-dir",
    "--tokenizer",
    "--revision",
    "--seed",
    "--swap-space",
    "--block-size",
    "--load-format",
    "--chat-template",
    "--tool-call-parser",
    "--reasoning-parser",
    "--uvicorn-log-level",
    "--config",
    "--api-server-count",
    "--limit-mm-per-prompt",
    "--max-logprobs",
    "--root-path",
    "--allowed-origins",
    "--show-hidden-metrics-for-version",
    "--compilation-config",
    "-O",
    "--speculative-config",
    "--cpu-offload-gb",
    "--hf-overrides",
    "--override-generation-config",
    "--lora-modules",
    "--max-lora-rank",
    "--hf-token",
    "--tokenizer-mode",
    "--distributed-executor-backend",
)


def _log(component: str, level: str, source: str, message: str) -> None:
    stamp = time.strftime("%m-%d %H:%M:%S")
    stream = sys.stdout if level == "INFO" else sys.stderr
    stream.write(f"({component} pid={os.getpid()}) {level} {stamp} [{source}] {message}\n")
    stream.flush()


def _uvicorn(message: str) -> None:
    sys.stderr.write(f"INFO:     {message}\n")
    sys.stderr.flush()


def _parse_len(text: str) -> int:
    """vLLM-style lengths: ``32768``, ``32k`` (x1000) or ``32K`` (x1024)."""
    scale = {"k": 1000, "K": 1024, "m": 1000**2, "M": 1024**2}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


@dataclass(frozen=True)
class EngineConfig:
    """Everything the mock engine needs, from its flags, its environment and the host's knobs."""

    model: str
    served_names: tuple[str, ...]
    host: str
    port: int
    bind_host: str
    bind_port: int
    max_model_len: int
    gpu_memory_utilization: float
    api_keys: tuple[str, ...]
    pid_file: Path | None
    host_home: Path | None
    knobs: dict[str, Any]


def parse_config(argv: list[str], environ: dict[str, str]) -> EngineConfig:
    """Parse ``serve MODEL [flags]``; unknown vLLM flags are accepted and ignored."""
    parser = argparse.ArgumentParser(prog="vllm serve", description="mockcloud stand-in for `vllm serve`")
    parser.add_argument("model_tag", nargs="?")
    parser.add_argument("--model")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", nargs="+")
    parser.add_argument("--max-model-len", type=_parse_len)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--api-key", nargs="+")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--pid-file")
    for flag in (
        "--enforce-eager",
        "--trust-remote-code",
        "--enable-prefix-caching",
        "--disable-log-stats",
        "--disable-log-requests",
        "--enable-auto-tool-choice",
        "--enable-lora",
    ):
        parser.add_argument(flag, action="store_true")
    for flag in _VALUE_FLAGS:
        parser.add_argument(flag, dest="ignored_" + flag.strip("-").replace("-", "_"))
    args, _unknown = parser.parse_known_args(argv)
    model = args.model_tag or args.model or DEFAULT_MODEL
    home = Path(environ["MOCKHOST_HOME"]) if environ.get("MOCKHOST_HOME") else None
    knobs = read_knobs(home) if home else dict(DEFAULT_KNOBS)
    host = args.host or "0.0.0.0"
    bind_host = environ.get("MOCKENGINE_BIND_HOST") or host
    if bind_host in ("0.0.0.0", "::", "") and environ.get("MOCKHOST_IP"):
        bind_host = environ["MOCKHOST_IP"]
    keys = tuple(args.api_key or ([environ["VLLM_API_KEY"]] if environ.get("VLLM_API_KEY") else []))
    pid_file = args.pid_file or environ.get("MOCKENGINE_PID_FILE")
    return EngineConfig(
        model=model,
        served_names=tuple(args.served_model_name or [model]),
        host=host,
        port=args.port,
        bind_host=bind_host,
        bind_port=int(environ.get("MOCKENGINE_BIND_PORT") or args.port),
        max_model_len=args.max_model_len or DEFAULT_MAX_MODEL_LEN,
        gpu_memory_utilization=args.gpu_memory_utilization,
        api_keys=keys,
        pid_file=Path(pid_file) if pid_file else None,
        host_home=home,
        knobs=knobs,
    )


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


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))


def _prompt_text(body: dict[str, Any], chat: bool) -> str:
    if chat:
        messages = body.get("messages") or []
        parts = [m.get("content") if isinstance(m, dict) else "" for m in messages]
        return " ".join(p if isinstance(p, str) else json.dumps(p) for p in parts)
    prompt = body.get("prompt", "")
    return " ".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt)


def complete(body: dict[str, Any], chat: bool, served: str, created: int) -> tuple[dict[str, Any], int, int, str]:
    """A deterministic OpenAI-style answer: (response, prompt tokens, completion tokens, finish reason).

    With vLLM's ``ignore_eos`` (what `vllm bench serve` sends) the reply runs on to exactly ``max_tokens``."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or (len(REPLY_WORDS) if chat else 16)
    if body.get("ignore_eos"):
        count = max(0, int(limit))
        reason = "length"
        words = tuple(REPLY_WORDS[i % len(REPLY_WORDS)] for i in range(count))
    else:
        count = max(0, min(int(limit), len(REPLY_WORDS)))
        reason = "length" if count < len(REPLY_WORDS) else "stop"
        words = REPLY_WORDS[:count]
    prompt_tokens = _count_tokens(_prompt_text(body, chat)) + (4 * len(body.get("messages") or []) if chat else 0)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": count,
        "total_tokens": prompt_tokens + count,
    }
    if chat:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": " ".join(words)},
            "logprobs": None,
            "finish_reason": reason,
        }
        response = {
            "id": f"chatcmpl-mock{created}",
            "object": "chat.completion",
            "created": created,
            "model": served,
            "choices": [choice],
            "usage": usage,
        }
    else:
        choice = {
            "index": 0,
            "text": "".join(" " + w for w in words),
            "logprobs": None,
            "finish_reason": reason,
        }
        response = {
            "id": f"cmpl-mock{created}",
            "object": "text_completion",
            "created": created,
            "model": served,
            "choices": [choice],
            "usage": usage,
        }
    return response, prompt_tokens, count, reason


def _delays(cfg: EngineConfig) -> tuple[float, float]:
    """(time to first token, per-token delay) from the host's knobs, read per request so a test can change them."""
    knobs = read_knobs(cfg.host_home) if cfg.host_home else cfg.knobs
    return float(knobs.get("engine_ttft") or 0), float(knobs.get("engine_token_delay") or 0)


def _error(message: str, kind: str, code: int, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def failure_text(kind: str, cfg: EngineConfig, environ: dict[str, str]) -> str:
    """The root cause vLLM prints for each simulated start-up failure (engines.md §6: F6, F9, F11, F8)."""
    total_gib = float(cfg.knobs["gpu_mem_mib"]) / 1024 - 0.46
    if kind == "kv_cache":
        needed = cfg.max_model_len * 16 / 131072
        available = needed * 0.62
        estimate = int(cfg.max_model_len * 0.62) // 16 * 16
        return (
            f"ValueError: To serve at least one request with the model's max seq len ({cfg.max_model_len}), "
            f"({needed:.2f} GiB KV cache is needed, which is larger than the available KV cache memory "
            f"({available:.2f} GiB). Based on the available memory, the estimated maximum model length is "
            f"{estimate}. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when "
            "initializing the engine."
        )
    if kind == "oom":
        return (
            f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 MiB. GPU 0 has a total "
            f"capacity of {total_gib:.2f} GiB of which 1.25 MiB is free. Including non-PyTorch memory, this "
            f"process has {total_gib - 0.01:.2f} GiB memory in use. Of the allocated memory "
            f"{total_gib - 0.4:.2f} GiB is allocated by PyTorch, and 0.19 GiB is reserved by PyTorch but "
            "unallocated. If reserved but unallocated memory is large try setting "
            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation."
        )
    if kind == "gated":
        url = f"https://huggingface.co/{cfg.model}/resolve/main/config.json"
        if environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN"):
            access = (
                f"Access to model {cfg.model} is restricted and you are not in the authorized list. "
                f"Visit https://huggingface.co/{cfg.model} to ask for access."
            )
            status = "403 Client Error"
        else:
            access = (
                f"Access to model {cfg.model} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in."
            )
            status = "401 Client Error"
        return (
            f"OSError: You are trying to access a gated repo.\nMake sure to have access to it at "
            f"https://huggingface.co/{cfg.model}.\n{status}. (Request ID: Root=1-mock)\n\n"
            f"Cannot access gated repo for url {url}.\n{access}"
        )
    desired = total_gib * cfg.gpu_memory_utilization
    return (
        f"ValueError: Free memory on device ({desired * 0.75:.2f}/{total_gib:.2f} GiB) on startup is less "
        f"than desired GPU memory utilization ({cfg.gpu_memory_utilization}, {desired:.2f} GiB). "
        "Decrease GPU memory utilization or reduce GPU memory used by other processes."
    )


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
        _uvicorn(f'{host}:{port} - "{self.requestline}" {code} {phrase}')

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
        """Server-sent events: one chunk per word, then the finish reason, then ``data: [DONE]``.

        The first word leaves after ``ttft`` seconds, each next one ``per_token`` after the previous. With
        ``stream_options.include_usage`` every chunk carries ``"usage": null`` and a last chunk with no choices
        carries the usage, as vLLM's OpenAI server does."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        choice = response["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        pieces = [(" " if i or not chat else "") + word for i, word in enumerate(text.split())]
        base = {k: response[k] for k in ("id", "created", "model")}
        base["object"] = "chat.completion.chunk" if chat else "text_completion"
        extra: dict[str, Any] = {"usage": None} if usage else {}
        # Each token is due at a fixed time from the request's start, so a late wake-up does not push back the rest.
        t0 = time.monotonic()
        for i, piece in enumerate([*pieces, ""]):
            due = t0 + ttft + per_token * min(i, max(0, len(pieces) - 1))
            time.sleep(max(0.0, due - time.monotonic()))
            finish = choice["finish_reason"] if i == len(pieces) else None
            body = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
            chunk = {**base, "choices": [{**body, "logprobs": None, "finish_reason": finish}], **extra}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        if usage:
            self.wfile.write(f"data: {json.dumps({**base, 'choices': [], 'usage': response['usage']})}\n\n".encode())
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


def _log_startup(cfg: EngineConfig) -> None:
    print(
        f"INFO {time.strftime('%m-%d %H:%M:%S')} [__init__.py:216] Automatically detected platform cuda.",
        flush=True,
    )
    _log("APIServer", "INFO", "api_server.py:1839", f"vLLM API server version {VLLM_VERSION}")
    shown = {
        "model_tag": cfg.model,
        "host": cfg.host,
        "port": cfg.port,
        "max_model_len": cfg.max_model_len,
        "served_model_name": list(cfg.served_names),
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
    }
    _log("APIServer", "INFO", "utils.py:233", f"non-default args: {shown}")
    _log("APIServer", "INFO", "model.py:1510", f"Using max model len {cfg.max_model_len}")
    _log(
        "EngineCore_DP0",
        "INFO",
        "core.py:77",
        f"Initializing a V1 LLM engine (v{VLLM_VERSION}) with config: model='{cfg.model}', "
        f"served_model_name={cfg.served_names[0]}, max_seq_len={cfg.max_model_len}",
    )
    _log("EngineCore_DP0", "INFO", "gpu_model_runner.py:2602", f"Starting to load model {cfg.model}...")


def _log_ready(cfg: EngineConfig, took: float) -> None:
    core = "EngineCore_DP0"
    _log(core, "INFO", "gpu_model_runner.py:2653", f"Model loading took 1.12 GiB and {took:.6f} seconds")
    _log(core, "INFO", "gpu_worker.py:298", "Available KV cache memory: 35.61 GiB")
    _log(core, "INFO", "kv_cache_utils.py:1087", "GPU KV cache size: 333,312 tokens")
    _log(
        core,
        "INFO",
        "kv_cache_utils.py:1091",
        f"Maximum concurrency for {cfg.max_model_len:,} tokens per request: {333312 / cfg.max_model_len:.2f}x",
    )
    _log(
        core,
        "INFO",
        "core.py:210",
        f"init engine (profile, create kv cache, warmup model) took {took:.2f} seconds",
    )
    _log(
        "APIServer",
        "INFO",
        "api_server.py:1912",
        f"Starting vLLM API server 0 on http://{cfg.host}:{cfg.port}",
    )
    _log("APIServer", "INFO", "launcher.py:34", "Available routes are:")
    for route, methods in (
        ("/health", "GET"),
        ("/metrics", "GET"),
        ("/version", "GET"),
        ("/v1/models", "GET"),
        ("/v1/completions", "POST"),
        ("/v1/chat/completions", "POST"),
    ):
        _log("APIServer", "INFO", "launcher.py:42", f"Route: {route}, Methods: {methods}")
    _uvicorn(f"Started server process [{os.getpid()}]")
    _uvicorn("Waiting for application startup.")
    _uvicorn("Application startup complete.")


def serve(cfg: EngineConfig) -> int:
    """Log like vLLM, stay unbound for the start-up delay (clients see connection refused), then serve."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    registered = _register_pid(cfg)
    try:
        _log_startup(cfg)
        delay = float(cfg.knobs.get("engine_startup_delay") or 0)
        failure = cfg.knobs.get("engine_fail")
        if failure:
            if stop.wait(delay / 2):
                return 0
            _log("EngineCore_DP0", "ERROR", "core.py:708", "EngineCore failed to start.")
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
            _log("APIServer", "ERROR", "api_server.py:1912", f"OSError: [Errno {exc.errno}] {exc.strerror}")
            return 1
        _log_ready(cfg, delay)
        worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        worker.start()
        stop.wait()
        _uvicorn("Shutting down")
        server.shutdown()
        server.server_close()
        _uvicorn(f"Finished server process [{os.getpid()}]")
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
