"""`orchestrator bench NAME`: load-test the deployed endpoint and save the figures beside the state."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.commands.target import no_replica, not_a_fleet, split_ref
from orchestrator.console import Console
from orchestrator.errors import ConfigError, EngineError, StateError

if TYPE_CHECKING:
    from orchestrator.config import DeploymentConfig
    from orchestrator.state import Deployment, EngineRecord


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
    base, index = split_ref(name)
    dep = store.load(base)
    if dep is None:
        raise StateError(f"no deployment named {base!r} in {store.dir}", "see `orchestrator status`")
    cfg = DeploymentConfig.model_validate(dep.config) if dep.config else None
    served, billed = serving_engines(dep, cfg, index, console)
    engine = served[0][1]
    endpoints = [e.endpoint for _, e in served]
    price = cfg.provider.price_per_hour * billed if cfg and cfg.provider.price_per_hour else None
    currency = cfg.provider.currency if cfg else "EUR"
    kind = engine.kind
    started = time.time()
    model = engine.served_name
    if kind == "vllm":
        api_key = load_secrets(cfg, create_api_key=False)[0].get(API_KEY) if cfg else None
        figures = load.run(
            endpoints,
            engine.served_name,
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
        model, url, body = prepare(endpoints[0], listed, timeout)
        path = url.removeprefix(endpoints[0].rstrip("/"))  # the same model on every replica
        urls = [e.rstrip("/") + path for e in endpoints]
        figures = load.run_inference(urls, body, levels=levels, requests=requests, timeout=timeout)
    elif cfg is not None and isinstance(cfg.engine, TfServingConfig) and cfg.engine.example_body is not None:
        body = cfg.engine.example_body
        urls = [e + ":predict" for e in endpoints]
        figures = load.run_inference(urls, body, levels=levels, requests=requests, timeout=timeout)
    else:
        raise ConfigError(
            f"bench knows no inference request for {name!r} ({kind})",
            "TF Serving needs engine.example_input",
        )
    doc: dict[str, Any] = {
        "name": name,
        "endpoint": endpoints[0] if len(endpoints) == 1 else None,
        "endpoints": endpoints,
        "replicas": [f"{base}/r{n}" for n, _ in served if n is not None] or None,
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
    file_name = name.replace("/", "-")  # NAME/rI: one replica's figures, NAME-rI-<time>.json
    saved = out_dir / f"{file_name}-{stamp}.json"
    for n in range(2, 100):  # two runs in one second keep both files
        if not saved.exists():
            break
        saved = out_dir / f"{file_name}-{stamp}-{n}.json"
    _write(saved, json.dumps(doc, indent=2) + "\n")
    doc["saved"] = str(saved)
    if all(lv["completed"] == 0 for lv in figures):
        first = next((e for lv in figures for e in lv["errors"]), "no request completed")
        console.report = doc  # the error boundary prints it, with the error (one JSON document)
        if not as_json:
            console.out(f"saved {saved}")
        raise EngineError(
            f"no benchmark request completed: {first}",
            f"check `orchestrator status {base}` (the server and the engine, asked now)",
        )
    if as_json:
        console.out(json.dumps(doc, indent=2))
    else:
        for line in load.table(figures, currency) if kind == "vllm" else load.inference_table(figures):
            console.out(line)
        console.out(f"saved {saved}")


def serving_engines(
    dep: Deployment, cfg: DeploymentConfig | None, index: int | None, console: Console
) -> tuple[list[tuple[int | None, EngineRecord]], int]:
    """The engines ``bench NAME[/rI]`` loads, with their replica numbers (None: one server), and how many servers
    bill meanwhile: a fleet's NAME is every replica that serves (those that do not are named, and left out), NAME/rI
    that replica; a Ray cluster's NAME its one OpenAI endpoint, Serve's on the head, with every node billed. A
    StateError (exit 11) when none serves."""
    name = dep.name
    if cfg is not None and cfg.cluster is not None:
        return [(None, _cluster_engine(dep, cfg, index))], sum(1 for r in dep.replicas if r.server is not None)
    if not dep.replicas:
        if index not in (None, 1):
            raise not_a_fleet(name, index)
        if dep.engine is None or dep.status != "deployed":
            raise not_serving(dep, f"deployment {name!r} is not deployed")
        return [(None, dep.engine)], 1
    chosen = [r for r in dep.replicas if index in (None, r.index)]
    if not chosen:
        assert index is not None  # NAME alone chooses every replica
        raise no_replica(name, index, [r.index for r in dep.replicas])
    served: list[tuple[int | None, EngineRecord]] = [
        (r.index, r.engine) for r in chosen if r.engine is not None and r.status == "deployed"
    ]
    idle = [f"{name}/r{r.index} ({r.status})" for r in chosen if r.engine is None or r.status != "deployed"]
    if not served:
        raise not_serving(dep, f"no engine of {name if index is None else f'{name}/r{index}'} is running",
                          ", ".join(idle))  # fmt: skip
    if idle:
        console.err(f"not benched (not serving): {', '.join(idle)}")
    return served, len(served)


def not_serving(dep: Deployment, what: str, which: str = "") -> StateError:
    """Nothing to bench (exit 11): what is not serving, its last error, and the `deploy` that finishes it (a
    re-run resumes where it stopped)."""
    why = f": {dep.last_error}" if dep.last_error else ""
    return StateError(
        f"{what}: {which}" if which else f"{what} (status: {dep.status}{why})",
        f"finish it first: `orchestrator deploy {dep.config_path}` (a re-run resumes); see `orchestrator status "
        f"{dep.name}`",
    )


def _cluster_engine(dep: Deployment, cfg: DeploymentConfig, index: int | None) -> EngineRecord:
    """A Ray cluster's engine: the Serve app behind the head's OpenAI endpoint (its nodes record none of their
    own)."""
    from orchestrator.state import EngineRecord

    assert cfg.cluster is not None
    name = dep.name
    if index is not None:
        raise StateError(f"deployment {name!r} is a Ray cluster: its one endpoint is the head's, not r{index}'s",
                         f"use `orchestrator bench {name}`")  # fmt: skip
    from orchestrator.ray_cluster import RayCluster, RayNode
    from orchestrator.ray_serve import endpoint

    head = next((r for r in dep.replicas if r.index == 1 and r.server is not None and r.server.ip), None)
    if head is None or head.server is None or dep.status != "deployed":
        raise not_serving(dep, f"Ray cluster {name!r} has no running Serve app")
    node = RayNode("r1", head.server.private_ip or "", head.server.ip or "")
    e = cfg.engine
    url = f"{endpoint(RayCluster(cfg, [node]))}/v1"  # Serve's HTTP port on the head
    return EngineRecord(kind="vllm", model=e.model, served_name=e.served, endpoint=url, metrics_url="",
                        method="ray-serve")  # fmt: skip


def _write(path: Path, text: str) -> None:
    from orchestrator.atomic import write_atomic

    try:
        write_atomic(path, text, 0o600)
    except OSError as exc:
        raise StateError(f"cannot save the results to {path}: {exc.strerror}") from None
