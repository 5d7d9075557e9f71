"""Progress display without a cloud: the rich live region (step, elapsed/limit, waits, streamed lines, masked),
the terminal check, plain-mode throttling of health waits, NDJSON events, and run_check's waiting reasons."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
from pathlib import Path

import pytest
from rich.console import Console as RichConsole

from orchestrator.actions import HttpCheck, Remote
from orchestrator.console import Console
from orchestrator.errors import EngineError
from orchestrator.health import Wait, run_check
from orchestrator.live_display import LiveDisplay
from orchestrator.progress import ProgressReporter, WaitThrottle, display_mode
from orchestrator.runner import StepOutcome

SECRET = "sk-progress-planted-91c2"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def terminal() -> tuple[RichConsole, io.StringIO]:
    buf = io.StringIO()
    return RichConsole(file=buf, force_terminal=True, width=160, color_system="standard"), buf


def test_live_display_shows_step_limits_wait_and_streamed_lines() -> None:
    clock = Clock()
    rich, buf = terminal()
    console = Console({"engine_api_key": SECRET})
    display = LiveDisplay(rich, clock=clock)
    reporter = ProgressReporter(console, dry_run=False, as_json=False, mode="rich", display=display)
    reporter.step_started(11, 12, "health", 45 * 60)
    assert display.active
    clock.now += 62
    reporter.action(Remote(f"pip install vllm  # {SECRET}", "install", timeout=600))
    reporter.output("stdout", "Collecting vllm==0.6.3")
    reporter.output("stderr", f"\x1b[33mtoken {SECRET} \x1b[0mdownloading 40%")
    clock.now += 12
    reporter.waiting(Wait("http://127.0.0.5:8000/health", "connection refused: still starting", 130.0, 1800.0))
    shown = [text for _, text in display.lines()]
    assert shown[0] == "[11/12] health  1m14s of 45m"
    assert shown[1].startswith("  remote: ") and "# ***" in shown[1] and shown[1].endswith("(12.0s of 10m)")
    assert shown[2] == "  waiting: connection refused: still starting, 2m10s of 30m"
    assert shown[3:] == ["  │ Collecting vllm==0.6.3", "  │ token *** downloading 40%"]
    reporter.step_finished(11, 12, StepOutcome("health", "ok", 75.0, "model listed"))
    assert display.active and display.lines() == []
    reporter.step_started(12, 12, "monitoring", 120)
    assert [text for _, text in display.lines()] == ["[12/12] monitoring  0.0s of 2m"]
    reporter.step_finished(12, 12, StepOutcome("monitoring", "ok", 0.5))
    assert not display.active  # after the last step the terminal is the console's again (the summary follows)
    text = buf.getvalue()
    # What reached the terminal: the live region as rendered, and the finished step's line that stays.
    assert "[11/12] health  1m14s of 45m" in text
    assert "waiting: connection refused: still starting, 2m10s of 30m" in text
    assert "Collecting vllm==0.6.3" in text
    assert "[11/12] health: ok (1m15s)  model listed" in text
    assert SECRET not in text


def test_stderr_on_a_terminal_means_the_live_display(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(os.dup(slave), "w") as tty:
            monkeypatch.setattr(sys, "stderr", tty)
            monkeypatch.setenv("TERM", "xterm")
            assert display_mode(dry_run=False, as_json=False) == "rich"
            assert display_mode(dry_run=False, as_json=True) == "json"
            assert display_mode(dry_run=True, as_json=False) == "dry-run"
            monkeypatch.setenv("TERM", "dumb")
            assert display_mode(dry_run=False, as_json=False) == "plain"
        with open(os.devnull, "w") as null:
            monkeypatch.setattr(sys, "stderr", null)
            monkeypatch.setenv("TERM", "xterm")
            assert display_mode(dry_run=False, as_json=False) == "plain"
    finally:
        os.close(master)
        os.close(slave)


def test_plain_waits_are_throttled_and_say_elapsed_and_deadline(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = ProgressReporter(Console(), dry_run=False, as_json=False, mode="plain")
    url = "http://127.0.0.5:8000/health"
    for tenth in range(0, 400):  # a probe every 0.1 s for 40 s; the reason changes at 12 s
        reason = "connection refused: still starting" if tenth < 120 else "HTTP 503"
        reporter.waiting(Wait(url, reason, tenth / 10, 1800.0))
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"      waiting for {url}: connection refused: still starting, 5.0s of 30m",  # not before 5 s
        f"      waiting for {url}: HTTP 503, 12.0s of 30m",  # a new reason; the same one only every 30 s
    ]
    throttle = WaitThrottle()
    assert not throttle.due(Wait(url, "a", 4.9, 60.0)) and throttle.due(Wait(url, "a", 5.0, 60.0))
    assert not throttle.due(Wait(url, "a", 34.9, 60.0)) and throttle.due(Wait(url, "a", 35.0, 60.0))
    assert not throttle.due(Wait("http://other/", "a", 1.0, 60.0))  # a new check starts afresh


def test_ndjson_events_are_masked_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    console = Console({"engine_api_key": SECRET})
    reporter = ProgressReporter(console, dry_run=False, as_json=True)
    assert reporter.mode == "json"
    reporter.step_started(1, 2, "start-engine", 300.0)
    reporter.action(Remote(f"echo {SECRET}", "echo", timeout=30))
    reporter.output("stdout", f'key "{SECRET}"')
    reporter.waiting(Wait("http://h:8000/health", "connection refused: still starting", 0.3, 60.0))
    reporter.info(f"note about {SECRET}")
    reporter.step_finished(1, 2, StepOutcome("start-engine", "ok", 1.25, "started"))
    assert console.on_document is not None
    console.on_document({"ok": False, "error": f"boom {SECRET}"})
    err = capsys.readouterr().err
    assert SECRET not in err
    events = [json.loads(line) for line in err.splitlines()]
    assert [e["event"] for e in events] == [
        "step_started",
        "action",
        "output",
        "waiting",
        "info",
        "step_finished",
        "summary",
    ]
    assert all(isinstance(e["ts"], float) for e in events)
    assert events[0] | {"ts": 0} == {
        "event": "step_started",
        "ts": 0,
        "index": 1,
        "total": 2,
        "kind": "start-engine",
        "timeout": 300.0,
    }
    assert events[1]["description"] == "remote: echo ***" and events[1]["timeout"] == 30 and events[1]["step"] == 1
    assert events[2]["line"] == 'key "***"' and events[2]["stream"] == "stdout"
    assert events[3] | {"ts": 0} == {
        "event": "waiting",
        "ts": 0,
        "step": 1,
        "url": "http://h:8000/health",
        "reason": "connection refused: still starting",
        "elapsed": 0.3,
        "deadline": 60.0,
    }
    assert events[5]["status"] == "ok" and events[5]["seconds"] == 1.25 and events[5]["note"] == "started"
    assert events[6]["document"] == {"ok": False, "error": "boom ***"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_check_reports_every_failed_probe_with_reason_and_deadline() -> None:
    url = f"http://127.0.0.1:{closed_port()}/health"  # nothing listens: the kernel refuses, as while vLLM loads
    waits: list[Wait] = []
    check = HttpCheck("GET", url, "status", wait=0.6, interval=0.1)
    with pytest.raises(EngineError) as err:
        run_check(check, {}, on_wait=waits.append)
    assert "connection refused: still starting (model loading)" in err.value.message
    assert len(waits) >= 2
    assert all(w.url == url and w.deadline == 0.6 for w in waits)
    assert all(w.reason == "connection refused: still starting (model loading)" for w in waits)
    assert [w.elapsed for w in waits] == sorted(w.elapsed for w in waits)
    assert waits[-1].text().startswith(f"waiting for {url}: connection refused: still starting (model loading), ")


def test_a_single_probe_of_a_refusing_engine_is_not_read_as_loading() -> None:
    """status (and a check that does not wait) probes an engine that served before: a refused connection then
    means nothing listens, not that a model is loading; and there was no waiting to report."""
    url = f"http://127.0.0.1:{closed_port()}/health"
    with pytest.raises(EngineError) as err:
        run_check(HttpCheck("GET", url, "status"), {})
    assert err.value.message == (
        f"GET {url}: connection refused: the engine is not answering (stopped, crashed or restarting)"
    )


def test_dry_run_reporter_prints_the_transcript_only(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = ProgressReporter(Console(), dry_run=True, as_json=False)
    reporter.step_started(1, 1, "connect", 600.0)
    reporter.action(Remote("true", "nothing"))
    reporter.step_finished(1, 1, StepOutcome("connect", "ok", 0.0, "x"))
    out = capsys.readouterr()
    assert out.out == "[1/1] connect\n      1. remote: true\n        -> x\n" and out.err == ""


def test_failed_json_teardown_ends_its_events_with_the_error_document(tmp_path: Path) -> None:
    """The CLI end to end: stderr holds NDJSON events up to a `summary` equal to stdout's error object, then the
    plain error:/hint: lines (a teardown whose unmonitor step meets a broken prometheus.yml: exit 10)."""
    from orchestrator.state import Deployment, MonitoringRecord, StateStore
    from tests.conftest import run_cli

    prom = tmp_path / "prometheus.yml"
    prom.write_text("scrape_configs: [\n")
    for key in ("key", "key.pub"):
        (tmp_path / key).write_text("")
    cfg = tmp_path / "p.yaml"
    cfg.write_text("name: ptest\nengine:\n  kind: vllm\n  model: m\nssh:\n  private_key: key\n")
    StateStore().save(
        Deployment(
            name="ptest",
            config_path=str(cfg),
            status="deployed",
            monitoring=MonitoringRecord(prometheus_config=str(prom), job="orchestrator-ptest"),
        )
    )
    proc = run_cli("teardown", "ptest", "--yes", "--json")
    assert proc.returncode == 10, proc.stderr
    lines = proc.stderr.splitlines()
    cut = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    events = [json.loads(line) for line in lines[:cut]]
    assert events[0]["event"] == "step_started" and events[0]["kind"] == "stop-engine"
    assert [e["kind"] for e in events if e["event"] == "step_finished"][:2] == ["stop-engine", "unmonitor"]
    assert events[-1]["event"] == "summary", proc.stderr
    assert events[-1]["document"] == json.loads(proc.stdout)
    assert events[-1]["document"]["ok"] is False and events[-1]["document"]["exit_code"] == 10


def test_successful_json_teardown_orphans_ends_its_events_with_the_summary(tmp_path: Path) -> None:
    """The CLI end to end against the fake upctl (no SSH: deleting an orphan is provider calls only): one orphan of
    this owner is deleted, and the NDJSON events end with a `summary` carrying stdout's document."""
    import subprocess

    from orchestrator.owner import ensure_owner
    from tests.conftest import run_cli
    from tests.test_fake_upctl import NVIDIA_OS, UPCTL, ed25519_public_key

    world = tmp_path / "world"
    world.mkdir()
    pool = [{"ipv4": "10.200.0.2", "authorized_keys": str(tmp_path / "ak"), "poweroff": [sys.executable, "-c", ""]}]
    (world / "hosts.json").write_text(json.dumps(pool))
    key = tmp_path / "id_ed25519.pub"
    key.write_text(ed25519_public_key() + "\n")
    home = tmp_path / "orchestrator-home"
    env = {"FAKE_UPCTL_HOME": str(world), "MOCKCLOUD_PYTHON": sys.executable, "UPCLOUD_TOKEN": "test-token",
           "ORCHESTRATOR_HOME": str(home), "ORCHESTRATOR_UPCTL": str(UPCTL), "HOME": str(tmp_path)}  # fmt: skip
    owner = ensure_owner(home)
    labels = ["managed_by=orchestrator", "orchestrator_deployment=lost", f"orchestrator_owner={owner.id}",
              f"orchestrator_owner_name={owner.name}"]  # fmt: skip
    argv = [str(UPCTL), "server", "create", "--hostname", "lost", "--zone", "fi-hel2", "--plan",
            "GPU-8xCPU-64GB-1xL40S", "--os", NVIDIA_OS, "--os-storage-size", "100", "--ssh-keys", str(key), "--wait",
            "-o", "json", *(arg for label in labels for arg in ("--label", label))]  # fmt: skip
    created = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    uuid = json.loads(created.stdout)["uuid"]

    proc = run_cli("teardown", "--orphans", "--yes", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and [(o["uuid"], o["result"]) for o in doc["orphans"]] == [(uuid, "deleted")]
    events = [json.loads(line) for line in proc.stderr.splitlines()]
    assert [e["kind"] for e in events if e["event"] == "step_started"] == ["find-orphans", "destroy-server"]
    assert events[-1]["event"] == "summary", proc.stderr
    assert events[-1]["document"] == doc
    assert sum(e["event"] == "summary" for e in events) == 1
