"""Tests for orchestrator.run_metrics: parse the rendered text back, promtool lint, atomic textfile writes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.errors import MonitoringError
from orchestrator.run_metrics import StepTiming, render_run_metrics, textfile_name, write_textfile

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt install prometheus)")

STEPS = [
    StepTiming("provision", 61.5, "ok"),
    StepTiming("verify-gpu", 2.25, "ok"),
    StepTiming("start-engine", 300.0, "failed"),
    StepTiming("monitoring", 0.0, "skipped"),
]


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def test_render_values_and_labels() -> None:
    text = render_run_metrics("demo", "up", "failed", STEPS, None, 1764316800.5)
    got = _samples(text)
    steps = {(lbl["step"], lbl["outcome"]): v for lbl, v in got["orchestrator_step_duration_seconds"]}
    assert steps == {
        ("provision", "ok"): 61.5,
        ("verify-gpu", "ok"): 2.25,
        ("start-engine", "failed"): 300.0,
        ("monitoring", "skipped"): 0.0,
    }
    assert all(lbl["deployment"] == "demo" for lbl, _ in got["orchestrator_step_duration_seconds"])
    assert got["orchestrator_run_success"] == [({"deployment": "demo", "command": "up"}, 0.0)]
    assert got["orchestrator_run_last_timestamp_seconds"] == [({"deployment": "demo", "command": "up"}, 1764316800.5)]
    assert got["orchestrator_run_duration_seconds"] == [({"deployment": "demo", "command": "up"}, 363.75)]
    assert "orchestrator_time_to_healthy_seconds" not in got


def test_render_success_with_time_to_healthy() -> None:
    text = render_run_metrics("demo", "up", "ok", STEPS[:2], 312.25, 1.0)
    got = _samples(text)
    assert got["orchestrator_run_success"] == [({"deployment": "demo", "command": "up"}, 1.0)]
    assert got["orchestrator_time_to_healthy_seconds"] == [({"deployment": "demo", "command": "up"}, 312.25)]
    assert "# TYPE orchestrator_time_to_healthy_seconds gauge" in text


def test_render_sums_repeated_steps_and_handles_no_steps() -> None:
    text = render_run_metrics(
        "d", "down", "ok", [StepTiming("ssh", 1.0, "failed"), StepTiming("ssh", 2.5, "failed")], None, 5
    )
    got = _samples(text)
    assert got["orchestrator_step_duration_seconds"] == [({"deployment": "d", "step": "ssh", "outcome": "failed"}, 3.5)]
    empty = _samples(render_run_metrics("d", "status", "ok", [], None, 5))
    assert "orchestrator_step_duration_seconds" not in empty
    assert empty["orchestrator_run_duration_seconds"] == [({"deployment": "d", "command": "status"}, 0.0)]


def test_render_escapes_label_values() -> None:
    text = render_run_metrics('we"ird\\name', "up", "ok", [StepTiming("a\nb", 1.0, "ok")], None, 0)
    got = _samples(text)
    assert got["orchestrator_step_duration_seconds"][0][0] == {
        "deployment": 'we"ird\\name',
        "step": "a\nb",
        "outcome": "ok",
    }


def test_render_is_fresh_each_call() -> None:
    a = render_run_metrics("one", "up", "ok", [StepTiming("x", 1, "ok")], None, 1)
    b = render_run_metrics("two", "up", "ok", [StepTiming("y", 1, "ok")], None, 1)
    assert 'deployment="one"' not in b
    assert a == render_run_metrics("one", "up", "ok", [StepTiming("x", 1, "ok")], None, 1)


@needs_promtool
def test_promtool_check_metrics_accepts_output(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    text = render_run_metrics("demo", "up", "ok", STEPS, 312.25, 1764316800.0)
    proc = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == ""


def test_textfile_name() -> None:
    assert textfile_name("demo", "up") == "orchestrator_demo_up.prom"
    assert textfile_name("a/b c", "up") == "orchestrator_a_b_c_up.prom"


def test_write_textfile_creates_0644_and_replaces(tmp_path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        target = tmp_path / "orchestrator_demo_up.prom"
        write_textfile(target, "first 1\n")
        assert target.read_text() == "first 1\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        write_textfile(target, "second 2\n")
        assert target.read_text() == "second 2\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
    finally:
        os.umask(old_umask)
    assert [p.name for p in tmp_path.iterdir()] == ["orchestrator_demo_up.prom"]  # no temp files left


def test_write_textfile_missing_directory_raises_monitoring_error(tmp_path: Path) -> None:
    with pytest.raises(MonitoringError) as err:
        write_textfile(tmp_path / "nope" / "x.prom", "a 1\n")
    assert err.value.hint and "nope" in err.value.hint


def test_write_textfile_failed_rename_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "is_a_dir.prom"
    target.mkdir()
    (target / "child").write_text("keeps the directory non-empty")
    with pytest.raises(MonitoringError):
        write_textfile(target, "a 1\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["is_a_dir.prom"]


def test_unmonitor_removes_the_run_metrics_of_every_command(tmp_path: Path) -> None:
    """deploy -> redeploy -> teardown: the state records only the last textfile; both must go, nobody else's."""
    from orchestrator.actions import Action
    from orchestrator.config import DeploymentConfig
    from orchestrator.context import StepContext
    from orchestrator.playbook import Playbook, PlaybookStep
    from orchestrator.runner import Runner, StepOutcome
    from orchestrator.state import Deployment, MonitoringRecord
    from orchestrator.transports.live import LiveExecutor

    class Quiet:
        def step_started(self, index: int, total: int, kind: str, timeout: float | None = None) -> None: ...
        def action(self, action: Action) -> None: ...
        def step_finished(self, index: int, total: int, outcome: StepOutcome) -> None: ...
        def info(self, message: str) -> None: ...

    prom = tmp_path / "prometheus.yml"
    prom.write_text("scrape_configs:\n")
    for command in ("deploy", "redeploy"):
        (tmp_path / textfile_name("demo", command)).write_text("orchestrator_run_success 1\n")
    other = tmp_path / textfile_name("demo_b", "deploy")  # another deployment whose name starts the same
    other.write_text("orchestrator_run_success 1\n")
    monitoring = {"prometheus_config": str(prom)}
    cfg = DeploymentConfig.model_validate({"name": "demo", "engine": {"model": "m"}, "monitoring": monitoring})
    dep = Deployment(name="demo", config_path="c")
    dep.monitoring = MonitoringRecord(run_metrics=str(tmp_path / textfile_name("demo", "redeploy")))
    Runner(LiveExecutor({}), Quiet()).run(
        Playbook(name="teardown", steps=[PlaybookStep(kind="unmonitor")]), StepContext(cfg=cfg, dep=dep, store=None)
    )
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([".prometheus.yml.lock", "prometheus.yml", other.name])
    assert dep.monitoring.run_metrics is None
