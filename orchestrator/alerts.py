"""Prometheus alerting rules for one deployment: a rules file written beside prometheus.yml (pure text out).

The expressions use the metric names the engines really export (vLLM ``vllm:*``, Triton ``nv_*``, TF Serving
``:tensorflow:*``, NVIDIA's DCGM exporter ``DCGM_FI_DEV_*``, Prometheus' node exporter ``node_*``), selected by
the ``deployment`` target label the deployment's scrape jobs set, so several deployments share one Prometheus
without their alerts mixing.
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
    filesystem_free_ratio: float = 0.10
    memory_available_ratio: float = 0.10


# Pseudo and in-memory filesystems the node exporter also reports; their fullness says nothing about the disk.
VIRTUAL_FS = "tmpfs|ramfs|devtmpfs|overlay|squashfs|fuse.*|nsfs|efivarfs"


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


def host_rules(deployment: str, job: str, s: AlertSettings) -> list[dict[str, Any]]:
    """The node exporter's alerts (its job is ``<job>-node``): exporter down, a filesystem almost full,
    memory pressure."""
    d = f'deployment="{_q(deployment)}"'
    fs = f'{d},fstype!~"{VIRTUAL_FS}"'
    return [
        _rule(
            "NodeExporterDown",
            f'up{{job="{_q(job)}-node"}} == 0',
            "5m",
            "warning",
            f"{deployment}: the node exporter {{{{ $labels.instance }}}} has not answered for 5 minutes",
            deployment,
        ),
        _rule(
            "FilesystemAlmostFull",
            f"max by (instance, mountpoint) (node_filesystem_avail_bytes{{{fs}}} / node_filesystem_size_bytes{{{fs}}})"
            f" < {s.filesystem_free_ratio}",
            "10m",
            "warning",
            f"{deployment}: {{{{ $labels.mountpoint }}}} has less than {s.filesystem_free_ratio:.0%} space left",
            deployment,
        ),
        _rule(
            "HostMemoryPressure",
            f"max by (instance) (node_memory_MemAvailable_bytes{{{d}}} / node_memory_MemTotal_bytes{{{d}}})"
            f" < {s.memory_available_ratio}",
            "5m",
            "warning",
            f"{deployment}: less than {s.memory_available_ratio:.0%} of the host's memory available for 5 minutes",
            deployment,
        ),
    ]


def alert_rules(deployment: str, job: str, engine: str, s: AlertSettings, host: bool = False) -> list[dict[str, Any]]:
    """Every alert of one deployment, engine-specific ones included (host ones with the node exporter),
    in a fixed order."""
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
    return rules + (host_rules(deployment, job, s) if host else [])


def rules_document(deployment: str, job: str, engine: str, settings: AlertSettings, host: bool = False) -> str:
    """The rules file text: one group named after the job; deterministic."""
    doc = {"groups": [{"name": job, "rules": alert_rules(deployment, job, engine, settings, host)}]}
    header = f"# Alerting rules for deployment {deployment} (managed by orchestrator: removed by teardown)\n"
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)


def check_rules_argv(path: str) -> list[str]:
    return ["promtool", "check", "rules", path]
