"""Prometheus alerting rules for one deployment: a rules file written beside prometheus.yml (pure text out).

The expressions use the metric names the engines really export (vLLM ``vllm:*``, Triton ``nv_*``, TF Serving
``:tensorflow:*``, NVIDIA's DCGM exporter ``DCGM_FI_DEV_*``), selected by the ``deployment`` target label the
deployment's scrape job sets, so several deployments share one Prometheus without their alerts mixing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

RULES_SUFFIX = ".rules.yml"


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds (from config.monitoring) the rules use."""

    waiting_requests: int = 10
    kv_cache_ratio: float = 0.9
    gpu_temp_celsius: int = 85
    gpu_memory_ratio: float = 0.95


def rules_path(prometheus_config: Path, job: str) -> Path:
    """The deployment's rules file: beside prometheus.yml, named after the scrape job."""
    return prometheus_config.parent / f"{job}{RULES_SUFFIX}"


def _q(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _rule(name: str, expr: str, duration: str, severity: str, summary: str, deployment: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity, "deployment": deployment},
        "annotations": {"summary": summary},
    }


def alert_rules(deployment: str, job: str, engine: str, s: AlertSettings) -> list[dict[str, Any]]:
    """Every alert of one deployment, engine-specific ones included, in a fixed order."""
    d = f'deployment="{_q(deployment)}"'
    rules = [
        _rule(
            "EngineDown",
            f'up{{job="{_q(job)}"}} == 0',
            "2m",
            "critical",
            f"{deployment}: the {engine} metrics endpoint {{{{ $labels.instance }}}} has not answered for 2 minutes",
            deployment,
        ),
        _rule(
            "EngineHealthProbeFailing",
            f'orchestrator_run_success{{{d}}} == 0 or absent_over_time(up{{job="{_q(job)}"}}[10m]) == 1',
            "1m",
            "critical",
            f"{deployment}: the orchestrator's last deploy or health probe failed, or no scrape of the engine"
            " in 10 minutes",
            deployment,
        ),
    ]
    if engine == "vllm":
        rules += [
            _rule(
                "KVCacheNearlyFull",
                f"max by (instance) (vllm:kv_cache_usage_perc{{{d}}}) > {s.kv_cache_ratio}",
                "5m",
                "warning",
                f"{deployment}: KV cache above {s.kv_cache_ratio:.0%} for 5 minutes (preemptions follow)",
                deployment,
            ),
            _rule(
                "RequestsWaiting",
                f"sum by (instance) (vllm:num_requests_waiting{{{d}}}) > {s.waiting_requests}",
                "5m",
                "warning",
                f"{deployment}: more than {s.waiting_requests} requests queued for 5 minutes",
                deployment,
            ),
        ]
    elif engine == "triton":
        rules += [
            _rule(
                "RequestsWaiting",
                f"sum by (instance) (nv_inference_pending_request_count{{{d}}}) > {s.waiting_requests}",
                "5m",
                "warning",
                f"{deployment}: more than {s.waiting_requests} inference requests pending for 5 minutes",
                deployment,
            ),
            _rule(
                "TritonGPUMemoryNearlyFull",
                f"max by (instance, gpu_uuid) (nv_gpu_memory_used_bytes{{{d}}} / nv_gpu_memory_total_bytes{{{d}}})"
                f" > {s.gpu_memory_ratio}",
                "5m",
                "warning",
                f"{deployment}: GPU memory above {s.gpu_memory_ratio:.0%} for 5 minutes",
                deployment,
            ),
        ]
    elif engine == "tfserving":
        rules += [
            _rule(
                "RequestErrors",
                f'sum by (instance) (rate(:tensorflow:serving:request_count{{{d},status!="OK"}}[5m])) > 0',
                "5m",
                "warning",
                f"{deployment}: TF Serving answers requests with errors",
                deployment,
            ),
        ]
    rules += [
        _rule(
            "GPUTemperatureHigh",
            f"max by (instance, gpu) (DCGM_FI_DEV_GPU_TEMP{{{d}}}) > {s.gpu_temp_celsius}",
            "5m",
            "warning",
            f"{deployment}: GPU {{{{ $labels.gpu }}}} above {s.gpu_temp_celsius} C for 5 minutes",
            deployment,
        ),
        _rule(
            "GPUMemoryNearlyFull",
            f"max by (instance, gpu) (DCGM_FI_DEV_FB_USED{{{d}}} / (DCGM_FI_DEV_FB_USED{{{d}}}"
            f" + DCGM_FI_DEV_FB_FREE{{{d}}})) > {s.gpu_memory_ratio}",
            "5m",
            "warning",
            f"{deployment}: GPU {{{{ $labels.gpu }}}} memory above {s.gpu_memory_ratio:.0%} for 5 minutes",
            deployment,
        ),
        _rule(
            "GPUXidErrors",
            f"max by (instance, gpu) (DCGM_FI_DEV_XID_ERRORS{{{d}}}) > 0",
            "0m",
            "critical",
            f"{deployment}: GPU {{{{ $labels.gpu }}}} reported XID error {{{{ $value }}}}",
            deployment,
        ),
    ]
    return rules


def rules_document(deployment: str, job: str, engine: str, settings: AlertSettings) -> str:
    """The rules file text: one group named after the job; deterministic."""
    doc = {"groups": [{"name": job, "rules": alert_rules(deployment, job, engine, settings)}]}
    header = f"# Alerting rules for deployment {deployment} (managed by orchestrator: removed by teardown)\n"
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)


def check_rules_argv(path: str) -> list[str]:
    return ["promtool", "check", "rules", path]
