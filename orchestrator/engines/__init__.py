"""Model-server engines: each module knows its start line, ports, readiness probes and metrics target."""

from __future__ import annotations

from orchestrator.config import DeploymentConfig
from orchestrator.engines.base import Engine


def engine_for(cfg: DeploymentConfig) -> Engine:
    from orchestrator.engines.tfserving import TfServingEngine
    from orchestrator.engines.triton import TritonEngine
    from orchestrator.engines.vllm import VllmEngine

    engines: dict[str, type[Engine]] = {"vllm": VllmEngine, "triton": TritonEngine, "tfserving": TfServingEngine}
    return engines[cfg.engine.kind](cfg)
