"""Model-server engines: each module knows its start line, ports, readiness probes and metrics target.

Importing the package loads nothing heavy (logs.py, the log commands, is read without pydantic); engine_for does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.config import DeploymentConfig
    from orchestrator.engines.base import Engine


def engine_for(cfg: DeploymentConfig) -> Engine:
    from orchestrator.engines.tfserving import TfServingEngine
    from orchestrator.engines.triton import TritonEngine
    from orchestrator.engines.vllm import VllmEngine

    engines: dict[str, type[Engine]] = {"vllm": VllmEngine, "triton": TritonEngine, "tfserving": TfServingEngine}
    return engines[cfg.engine.kind](cfg)
