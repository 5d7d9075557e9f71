"""The mock vLLM's command line: `vllm serve` flags, the environment and the host's knobs, as one EngineConfig."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mockcloud.hostbase import DEFAULT_KNOBS, read_knobs

VLLM_VERSION = "0.11.0"
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
DEFAULT_MAX_MODEL_LEN = 32768
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
