"""The orchestrator's own per-run figures, rendered for node_exporter's textfile collector."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from orchestrator.atomic import write_atomic
from orchestrator.errors import MonitoringError

STEP_OUTCOMES = ("ok", "failed", "skipped")
TEXTFILE_MODE = 0o644
# The commands that write a textfile (session._write_run_metrics); teardown removes one per command.
RUN_METRICS_COMMANDS = ("deploy", "redeploy")


@dataclass(frozen=True)
class StepTiming:
    """How long one step of a run took and how it ended ("ok", "failed" or "skipped")."""

    step: str
    seconds: float
    outcome: str


def render_run_metrics(
    deployment: str,
    command: str,
    outcome: str,
    steps: list[StepTiming],
    time_to_healthy: float | None,
    finished_at: float,
) -> str:
    """Render one run's metrics in the Prometheus text format.

    Series (all gauges, so a re-run simply overwrites the file):
      orchestrator_step_duration_seconds{deployment,step,outcome}  seconds per step; repeats are summed
      orchestrator_run_success{deployment,command}                 1 when outcome == "ok", else 0
      orchestrator_run_duration_seconds{deployment,command}        sum of the step durations
      orchestrator_run_last_timestamp_seconds{deployment,command}  finished_at (Unix seconds)
      orchestrator_time_to_healthy_seconds{deployment,command}     only when time_to_healthy is known
    """
    totals: dict[tuple[str, str], float] = {}
    for s in steps:
        key = (s.step, s.outcome)
        totals[key] = totals.get(key, 0.0) + float(s.seconds)
    run = {"deployment": deployment, "command": command}
    families = [
        _gauge(
            "orchestrator_step_duration_seconds",
            "Wall-clock seconds spent in each step of the last orchestrator run.",
            [({"deployment": deployment, "step": step, "outcome": how}, sec) for (step, how), sec in totals.items()],
        ),
        _gauge(
            "orchestrator_run_success",
            "1 if the last orchestrator run of this command succeeded, 0 if it did not.",
            [(run, 1.0 if outcome == "ok" else 0.0)],
        ),
        _gauge(
            "orchestrator_run_duration_seconds",
            "Total seconds of all steps in the last orchestrator run.",
            [(run, sum(float(s.seconds) for s in steps))],
        ),
        _gauge(
            "orchestrator_run_last_timestamp_seconds",
            "Unix time at which the last orchestrator run of this command finished.",
            [(run, finished_at)],
        ),
    ]
    if time_to_healthy is not None:
        families.append(
            _gauge(
                "orchestrator_time_to_healthy_seconds",
                "Seconds from starting the model server until it first passed its health check.",
                [(run, time_to_healthy)],
            )
        )
    return "".join(families)


def _gauge(name: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> str:
    """One gauge family in the text exposition format (version 0.0.4): HELP (a constant of this module: no
    escaping needed), TYPE, then one line per sample, label values escaped. Written here rather than with
    prometheus_client, whose import alone cost each deploy ~0.1 s of CPU."""
    out = [f"# HELP {name} {help_text}\n", f"# TYPE {name} gauge\n"]
    for labels, value in samples:
        pairs = ",".join(f'{key}="{_label_value(val)}"' for key, val in sorted(labels.items()))
        out.append(f"{name}{{{pairs}}} {_number(float(value))}\n")
    return "".join(out)


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def textfile_name(deployment: str, command: str) -> str:
    """A collector-friendly file name for one deployment and command, e.g. ``orchestrator_demo_up.prom``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{deployment}_{command}")
    return f"orchestrator_{safe}.prom"


def write_textfile(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (orchestrator.atomic: temp file in the same directory, then rename),
    mode 0644. The temp file starts with a dot and does not end in ``.prom``, so the textfile collector never
    reads a half-written file.
    """
    try:
        write_atomic(path, text, TEXTFILE_MODE, make_dirs=False)
    except OSError as exc:
        missing = isinstance(exc, FileNotFoundError) and not path.parent.is_dir()
        raise MonitoringError(
            f"cannot write metrics file {path}: {exc.strerror or exc}",
            f"Check that the directory {path.parent} exists and is writable "
            "(node_exporter --collector.textfile.directory)."
            if missing
            else f"Check free space and permissions in {path.parent}.",
        ) from exc
