"""Grafana file provisioning for a deployment: datasource, dashboards provider and dashboards (pure text out).

The dashboards are package data (orchestrator/dashboards/*.json) written the way dashboards are exported for
import: datasource ``${DS_PROMETHEUS}`` and a ``deployment`` constant ``__DEPLOYMENT__``. File provisioning does not
resolve import-time variables, so both are substituted here: the datasource becomes the provisioned uid.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator import package_path

DATASOURCE_UID = "orchestrator-prometheus"
PROVIDER = "orchestrator"
GPU_DASHBOARD = "gpu"
HOST_DASHBOARD = "host"  # node exporter: CPU, memory, disk, network
ENGINE_DASHBOARDS = ("vllm", "triton", "tfserving")


@dataclass(frozen=True)
class GrafanaFile:
    """One file Grafana provisioning reads: where it goes, and its text."""

    path: Path
    text: str


def datasource_path(grafana_dir: Path) -> Path:
    return grafana_dir / "datasources" / "orchestrator.yaml"


def provider_path(grafana_dir: Path) -> Path:
    return grafana_dir / "dashboards" / "orchestrator.yaml"


def dashboards_dir(grafana_dir: Path) -> Path:
    return grafana_dir / "dashboards" / PROVIDER


def dashboard_names(engine: str, host: bool = False) -> list[str]:
    return ([engine] if engine in ENGINE_DASHBOARDS else []) + [GPU_DASHBOARD] + ([HOST_DASHBOARD] if host else [])


def dashboard_path(grafana_dir: Path, job: str, name: str) -> Path:
    return dashboards_dir(grafana_dir) / f"{job}-{name}.json"


def datasource_document(prometheus_url: str) -> str:
    doc = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus (orchestrator)",
                "type": "prometheus",
                "uid": DATASOURCE_UID,
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": False,
                "editable": False,
            }
        ],
    }
    return "# managed by orchestrator\n" + yaml.safe_dump(doc, sort_keys=False)


def provider_document(grafana_dir: Path) -> str:
    doc = {
        "apiVersion": 1,
        "providers": [
            {
                "name": PROVIDER,
                "folder": PROVIDER,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "options": {"path": str(dashboards_dir(grafana_dir))},
            }
        ],
    }
    return "# managed by orchestrator\n" + yaml.safe_dump(doc, sort_keys=False)


def template(name: str) -> dict[str, Any]:
    """A dashboard as shipped (import-time variables in place)."""
    text = package_path("dashboards", f"{name}.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def _resolve(node: Any, deployment: str) -> Any:
    if isinstance(node, dict):
        return {k: _resolve(v, deployment) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, deployment) for v in node]
    if isinstance(node, str):
        return node.replace("${DS_PROMETHEUS}", DATASOURCE_UID).replace("__DEPLOYMENT__", deployment)
    return node


def dashboard_uid(job: str, name: str) -> str:
    """Grafana uids are at most 40 characters: readable when it fits, else shortened with a hash."""
    uid = f"{job}-{name}"
    if len(uid) <= 40:
        return uid
    digest = hashlib.sha256(uid.encode()).hexdigest()[:8]
    return f"{uid[: 40 - 9]}-{digest}"


def dashboard_document(name: str, deployment: str, job: str) -> str:
    doc = _resolve(template(name), deployment)
    doc["uid"] = dashboard_uid(job, name)
    doc["title"] = str(doc["title"]).replace("$deployment", deployment)
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def provisioning_files(
    grafana_dir: Path, prometheus_url: str, deployment: str, job: str, engine: str, host: bool = False
) -> list[GrafanaFile]:
    """Every file to write: the shared datasource and provider files, then this deployment's dashboards."""
    files = [
        GrafanaFile(datasource_path(grafana_dir), datasource_document(prometheus_url)),
        GrafanaFile(provider_path(grafana_dir), provider_document(grafana_dir)),
    ]
    for name in dashboard_names(engine, host):
        files.append(GrafanaFile(dashboard_path(grafana_dir, job, name), dashboard_document(name, deployment, job)))
    return files
