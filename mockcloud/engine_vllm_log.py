"""The mock vLLM's log lines: vLLM's own format for start-up and readiness, uvicorn's for the HTTP server."""

from __future__ import annotations

import os
import sys
import time

from mockcloud.engine_vllm_config import VLLM_VERSION, EngineConfig


def log(component: str, level: str, source: str, message: str) -> None:
    stamp = time.strftime("%m-%d %H:%M:%S")
    stream = sys.stdout if level == "INFO" else sys.stderr
    stream.write(f"({component} pid={os.getpid()}) {level} {stamp} [{source}] {message}\n")
    stream.flush()


def uvicorn(message: str) -> None:
    sys.stderr.write(f"INFO:     {message}\n")
    sys.stderr.flush()


def log_startup(cfg: EngineConfig) -> None:
    print(
        f"INFO {time.strftime('%m-%d %H:%M:%S')} [__init__.py:216] Automatically detected platform cuda.",
        flush=True,
    )
    log("APIServer", "INFO", "api_server.py:1839", f"vLLM API server version {VLLM_VERSION}")
    shown = {
        "model_tag": cfg.model,
        "host": cfg.host,
        "port": cfg.port,
        "max_model_len": cfg.max_model_len,
        "served_model_name": list(cfg.served_names),
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
    }
    log("APIServer", "INFO", "utils.py:233", f"non-default args: {shown}")
    log("APIServer", "INFO", "model.py:1510", f"Using max model len {cfg.max_model_len}")
    log(
        "EngineCore_DP0",
        "INFO",
        "core.py:77",
        f"Initializing a V1 LLM engine (v{VLLM_VERSION}) with config: model='{cfg.model}', "
        f"served_model_name={cfg.served_names[0]}, max_seq_len={cfg.max_model_len}",
    )
    log("EngineCore_DP0", "INFO", "gpu_model_runner.py:2602", f"Starting to load model {cfg.model}...")


def log_ready(cfg: EngineConfig, took: float) -> None:
    core = "EngineCore_DP0"
    log(core, "INFO", "gpu_model_runner.py:2653", f"Model loading took 1.12 GiB and {took:.6f} seconds")
    log(core, "INFO", "gpu_worker.py:298", "Available KV cache memory: 35.61 GiB")
    log(core, "INFO", "kv_cache_utils.py:1087", "GPU KV cache size: 333,312 tokens")
    log(
        core,
        "INFO",
        "kv_cache_utils.py:1091",
        f"Maximum concurrency for {cfg.max_model_len:,} tokens per request: {333312 / cfg.max_model_len:.2f}x",
    )
    log(
        core,
        "INFO",
        "core.py:210",
        f"init engine (profile, create kv cache, warmup model) took {took:.2f} seconds",
    )
    log(
        "APIServer",
        "INFO",
        "api_server.py:1912",
        f"Starting vLLM API server 0 on http://{cfg.host}:{cfg.port}",
    )
    log("APIServer", "INFO", "launcher.py:34", "Available routes are:")
    for route, methods in (
        ("/health", "GET"),
        ("/metrics", "GET"),
        ("/version", "GET"),
        ("/v1/models", "GET"),
        ("/v1/completions", "POST"),
        ("/v1/chat/completions", "POST"),
    ):
        log("APIServer", "INFO", "launcher.py:42", f"Route: {route}, Methods: {methods}")
    uvicorn(f"Started server process [{os.getpid()}]")
    uvicorn("Waiting for application startup.")
    uvicorn("Application startup complete.")
