"""Prometheus scrape configuration for deployed model servers: the scrape target, its job, file_sd, promtool.

Editing prometheus.yml itself (our job blocks and rule_files lines, every other byte kept) is prometheus_yml.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import MonitoringError

DEFAULT_GLOBAL: dict[str, str] = {"scrape_interval": "15s"}
DEFAULT_METRICS_PATH = "/metrics"
DEFAULT_SCHEME = "http"
JOB_PREFIX = "orchestrator-"

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Prometheus duration: units in descending order, at least one, e.g. "15s", "1m30s", "500ms".
_DURATION = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
_JOB_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ScrapeTarget:
    """One scrape job: where the metrics are (``host:port`` targets, path, scheme) and extra labels."""

    job: str
    targets: tuple[str, ...]
    metrics_path: str = DEFAULT_METRICS_PATH
    scheme: str = DEFAULT_SCHEME
    labels: tuple[tuple[str, str], ...] = ()
    scrape_interval: str | None = None


def job_name(deployment: str) -> str:
    """The scrape job name for a deployment: ``orchestrator-<deployment>``, unsafe characters as ``-``."""
    cleaned = _JOB_UNSAFE.sub("-", deployment.strip()).strip("-.")
    if not cleaned:
        raise MonitoringError(
            f"cannot derive a Prometheus job name from deployment name {deployment!r}",
            "Use a deployment name with letters, digits, '-', '_' or '.'.",
        )
    return JOB_PREFIX + cleaned


def validate_target(target: ScrapeTarget) -> None:
    """Reject what ``promtool check config`` would reject later, with a clearer message."""
    hint = "Targets are 'host:port' with no scheme or path; set metrics_path and scheme separately."
    if not target.job.strip():
        raise MonitoringError("scrape job name is empty", "Use job_name(<deployment>) to build one.")
    if not target.targets:
        raise MonitoringError(f"scrape job {target.job!r} has no targets", hint)
    for t in target.targets:
        _check_host_port(target.job, t, hint)
    if not target.metrics_path.startswith("/"):
        raise MonitoringError(
            f"scrape job {target.job!r}: metrics_path {target.metrics_path!r} must start with '/'",
            "For example /metrics or /monitoring/prometheus/metrics.",
        )
    if target.scheme not in ("http", "https"):
        raise MonitoringError(f"scrape job {target.job!r}: scheme {target.scheme!r} must be 'http' or 'https'", None)
    for name, _value in target.labels:
        if not _LABEL_NAME.match(name):
            raise MonitoringError(
                f"scrape job {target.job!r}: {name!r} is not a valid Prometheus label name",
                "Label names match [a-zA-Z_][a-zA-Z0-9_]*.",
            )
    if target.scrape_interval is not None and not _is_duration(target.scrape_interval):
        raise MonitoringError(
            f"scrape job {target.job!r}: scrape_interval {target.scrape_interval!r} is not a duration",
            "Use a duration such as 15s, 1m or 1m30s.",
        )


def _check_host_port(job: str, target: str, hint: str) -> None:
    bad = not target or "://" in target or "/" in target or any(c.isspace() for c in target)
    host, sep, port = target.rpartition(":")
    if not bad:
        bad = not sep or not host or not port.isdigit() or not 0 < int(port) < 65536
    if not bad and ":" in host:  # IPv6 must be bracketed: [::1]:8000
        bad = not (host.startswith("[") and host.endswith("]"))
    if bad:
        raise MonitoringError(f"scrape job {job!r}: {target!r} is not a valid 'host:port' target", hint)


def _is_duration(text: str) -> bool:
    return bool(text) and _DURATION.match(text) is not None and any(ch.isdigit() for ch in text)


def scrape_job_dict(target: ScrapeTarget) -> dict[str, Any]:
    """The ``scrape_configs`` entry for one target, in a fixed key order."""
    validate_target(target)
    job: dict[str, Any] = {"job_name": target.job}
    if target.scrape_interval is not None:
        job["scrape_interval"] = target.scrape_interval
    job["metrics_path"] = target.metrics_path
    job["scheme"] = target.scheme
    group: dict[str, Any] = {"targets": list(target.targets)}
    if target.labels:
        group["labels"] = dict(sorted(target.labels))
    job["static_configs"] = [group]
    return job


def file_sd_document(targets: list[ScrapeTarget]) -> str:
    """A file_sd_configs JSON document: one target group per ScrapeTarget, keys sorted, trailing newline.

    Each group carries ``job`` (overriding the referencing job's name), ``__metrics_path__`` when the
    path is not /metrics and ``__scheme__`` when it is not http. ``scrape_interval`` cannot be set
    per target here; use a static job (merge_scrape_job) for that.
    """
    groups: list[dict[str, Any]] = []
    for target in targets:
        validate_target(target)
        labels: dict[str, str] = {"job": target.job}
        labels.update(dict(target.labels))
        if target.metrics_path != DEFAULT_METRICS_PATH:
            labels["__metrics_path__"] = target.metrics_path
        if target.scheme != DEFAULT_SCHEME:
            labels["__scheme__"] = target.scheme
        groups.append({"targets": list(target.targets), "labels": labels})
    return json.dumps(groups, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def check_config_argv(config_path: str) -> list[str]:
    """The promtool command that validates a config file (and the file_sd files it references)."""
    return ["promtool", "check", "config", config_path]


def parse_promtool_output(returncode: int, stdout: str, stderr: str) -> tuple[bool, list[str]]:
    """Read ``promtool check ...`` output: (ok, messages).

    Messages are the ``FAILED: <reason>`` and ``WARNING: <text>`` lines, stripped, in output order
    (stdout first). A reason promtool spreads over several lines (YAML unmarshal errors) is joined
    into one. When promtool fails without a FAILED line (usage error, crash), the last non-empty line
    of its output is reported as the reason, so there is always something to show.
    """
    messages: list[str] = []
    failed = False
    for stream in (stdout, stderr):
        current: list[str] | None = None  # the FAILED message still collecting continuation lines
        for line in stream.splitlines():
            text = line.strip()
            if text.startswith(("FAILED:", "WARNING:")):
                failed = failed or text.startswith("FAILED:")
                current = [text] if text.startswith("FAILED:") else None
                messages.append(text)
            elif current is not None and text and not text.startswith(("SUCCESS:", "Checking ")):
                current.append(text)
                messages[-1] = " ".join(current)
            else:
                current = None
    ok = returncode == 0 and not failed
    if not ok and not failed:
        tail = [ln.strip() for ln in (stderr.strip() or stdout.strip()).splitlines() if ln.strip()]
        messages.append(f"FAILED: {tail[-1] if tail else f'promtool exited {returncode}'}")
    return ok, messages


def promtool_error(config_path: str, messages: list[str]) -> MonitoringError:
    """The error to raise when promtool rejected a config, reasons in the message, details below."""
    reasons = [m.removeprefix("FAILED:").strip() for m in messages if m.startswith("FAILED:")]
    first = reasons[0] if reasons else "unknown reason"
    return MonitoringError(
        f"promtool rejected {config_path}: {first}",
        f"Fix the reported problem; 'promtool check config {config_path}' shows it again.",
        details="\n".join(messages) or None,
    )
