"""`orchestrator bench NAME`: load-test the deployed endpoint and save the figures beside the state."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from orchestrator.console import Console
from orchestrator.errors import ConfigError, EngineError, StateError


def parse_levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or any(n < 1 or n > 1024 for n in levels):
        raise ConfigError(f"--concurrency {text!r}: expected a comma-separated list of 1..1024, e.g. 1,4,16")
    return levels


def bench(
    console: Console,
    name: str,
    *,
    concurrency: str,
    requests: int,
    input_tokens: int,
    output_tokens: int,
    timeout: float,
    as_json: bool,
) -> None:
    from orchestrator import bench as load
    from orchestrator.config import DeploymentConfig
    from orchestrator.engine_config import TfServingConfig
    from orchestrator.secrets import API_KEY, load_secrets
    from orchestrator.state import StateStore, ensure_home

    levels = parse_levels(concurrency)
    if requests < 1 or input_tokens < 1 or output_tokens < 1 or timeout <= 0:
        raise ConfigError("--requests, --input-tokens, --output-tokens and --timeout must be positive")
    store = StateStore()
    dep = store.load(name)
    if dep is None:
        raise StateError(f"no deployment named {name!r} in {store.dir}", "see `orchestrator status`")
    if dep.engine is None or dep.status != "deployed":
        raise StateError(f"deployment {name!r} has no running engine (status: {dep.status})", "deploy it first")
    cfg = DeploymentConfig.model_validate(dep.config) if dep.config else None
    price = cfg.provider.price_per_hour if cfg else None
    currency = cfg.provider.currency if cfg else "EUR"
    kind = dep.engine.kind
    started = time.time()
    model = dep.engine.served_name
    if kind == "vllm":
        api_key = load_secrets(cfg, create_api_key=False)[0].get(API_KEY) if cfg else None
        figures = load.run(
            dep.engine.endpoint,
            dep.engine.served_name,
            api_key,
            levels=levels,
            requests=requests,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            timeout=timeout,
            price_per_hour=price,
        )
    elif kind == "triton":
        from orchestrator.bench_triton import prepare

        listed = list(getattr(cfg.engine, "models", []) or []) if cfg else []
        model, url, body = prepare(dep.engine.endpoint, listed, timeout)
        figures = load.run_inference(url, body, levels=levels, requests=requests, timeout=timeout)
    elif cfg is not None and isinstance(cfg.engine, TfServingConfig) and cfg.engine.example_body is not None:
        body = cfg.engine.example_body
        figures = load.run_inference(
            dep.engine.endpoint + ":predict", body, levels=levels, requests=requests, timeout=timeout
        )
    else:
        raise ConfigError(
            f"bench knows no inference request for {name!r} ({kind})",
            "TF Serving needs engine.example_input",
        )
    doc: dict[str, Any] = {
        "name": name,
        "endpoint": dep.engine.endpoint,
        "model": model,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "requests_per_level": requests,
        "engine": kind,
        "input_tokens": input_tokens if kind == "vllm" else None,
        "output_tokens": output_tokens if kind == "vllm" else None,
        "price_per_hour": price,
        "currency": currency if price is not None else None,
        "levels": figures,
    }
    home = ensure_home()
    out_dir = home / "bench"
    out_dir.mkdir(exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    path = out_dir / f"{name}-{stamp}.json"
    for n in range(2, 100):  # two runs in one second keep both files
        if not path.exists():
            break
        path = out_dir / f"{name}-{stamp}-{n}.json"
    _write(path, json.dumps(doc, indent=2) + "\n")
    doc["saved"] = str(path)
    if all(lv["completed"] == 0 for lv in figures):
        first = next((e for lv in figures for e in lv["errors"]), "no request completed")
        console.report = doc  # the error boundary prints it, with the error (one JSON document)
        if not as_json:
            console.out(f"saved {path}")
        raise EngineError(
            f"no benchmark request completed: {first}",
            f"check `orchestrator status {name}` (the server and the engine, asked now)",
        )
    if as_json:
        console.out(json.dumps(doc, indent=2))
    else:
        for line in load.table(figures, currency) if kind == "vllm" else load.inference_table(figures):
            console.out(line)
        console.out(f"saved {path}")


def _write(path: Path, text: str) -> None:
    from orchestrator.atomic import write_atomic

    try:
        write_atomic(path, text, 0o600)
    except OSError as exc:
        raise StateError(f"cannot save the results to {path}: {exc.strerror}") from None
