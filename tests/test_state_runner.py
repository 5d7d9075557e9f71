"""State store (atomic, 0600, locks, corrupt files) and the runner driven by a scripted executor."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.actions import Action, Local, Remote, Result
from orchestrator.config import DeploymentConfig
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import (
    Interrupted,
    MonitoringError,
    OrchestratorError,
    ProviderError,
    SSHError,
    StateError,
    TeardownIncomplete,
)
from orchestrator.playbook import Playbook, PlaybookStep, load_playbook
from orchestrator.runner import CATEGORY, Runner, StepOutcome
from orchestrator.state import Deployment, ServerRecord, StateStore
from orchestrator.steps import STEPS
from tests.conftest import REPO, run_cli


def make_cfg() -> DeploymentConfig:
    return DeploymentConfig.model_validate({"name": "unit", "engine": {"model": "m"}})


def test_state_roundtrip_is_atomic_and_private(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    dep = Deployment(name="unit", config_path="/c.yaml", server=ServerRecord(uuid="00ab"))
    path = store.save(dep)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    assert store.load("unit") == dep
    assert [p.name for p in store.dir.iterdir()] == ["unit.json"], "no temp files left behind"
    assert store.names() == ["unit"]


@pytest.mark.parametrize(
    "content, words",
    [
        ("{not json", "corrupt"),
        ('{"kind": "something-else"}', "not an orchestrator"),
        ('{"kind": "orchestrator/deployment", "schema_version": 99}', "schema_version"),
    ],
)
def test_corrupt_or_foreign_state_is_named_never_overwritten(tmp_path: Path, content: str, words: str) -> None:
    store = StateStore(tmp_path)
    store.dir.mkdir(parents=True)
    store.path("bad").write_text(content)
    with pytest.raises(StateError) as err:
        store.load("bad")
    assert str(store.path("bad")) in err.value.message and words in err.value.message
    assert store.path("bad").read_text() == content
    proc = run_cli("status", env={"ORCHESTRATOR_HOME": str(tmp_path)})
    assert proc.returncode == 11 and str(store.path("bad")) in proc.stderr


def test_lock_is_exclusive_and_dies_with_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from orchestrator.state import StateStore;"
            "s = StateStore(Path(sys.argv[1]));\n"
            "with s.lock('busy', 'deploy'):\n print('held', flush=True); time.sleep(30)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        store = StateStore(tmp_path)
        with pytest.raises(StateError) as err, store.lock("busy", "teardown"):
            pass
        assert f"pid {holder.pid}" in err.value.message and "orchestrator deploy" in err.value.message
        with store.lock("other", "deploy"):  # a different deployment is not blocked
            pass
    finally:
        holder.kill()
        holder.wait()
    with StateStore(tmp_path).lock("busy", "deploy"):  # the dead holder's lock is gone
        pass


class Scripted:
    """Executor that answers from a list of (predicate, result or exception)."""

    dry_run = False

    def __init__(self, answers: list[tuple[str, Result | Exception]]) -> None:
        self.answers = answers
        self.seen: list[str] = []

    def execute(self, action: Action) -> Result:
        line = action.describe()
        self.seen.append(line)
        for i, (needle, answer) in enumerate(self.answers):
            if needle in line:
                self.answers.pop(i)
                if isinstance(answer, Exception):
                    raise answer
                return answer
        return Result()

    def close(self) -> None:
        pass


class Quiet:
    def step_started(self, index: int, total: int, kind: str, timeout: float | None = None) -> None: ...
    def action(self, action: Action) -> None: ...
    def step_finished(self, index: int, total: int, outcome: StepOutcome) -> None: ...
    def info(self, message: str) -> None: ...


def test_transient_failures_retry_then_succeed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}

    def flaky(ctx: StepContext) -> StepGen:
        calls["n"] += 1
        r = yield Local(("upctl", "server", "plans", "-o", "json"), "plans")
        if calls["n"] < 3:
            raise ProviderError("HTTP 503", transient=True)
        return f"ok after {calls['n']} attempts ({r.rc})"

    monkeypatch.setitem(STEPS, "provision", flaky)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    store = StateStore(tmp_path)
    ctx = StepContext(cfg=make_cfg(), dep=Deployment(name="unit", config_path="c"), store=store)
    book = Playbook(name="t", steps=[PlaybookStep(kind="provision", retries=2)])
    outcomes = Runner(Scripted([]), Quiet()).run(book, ctx)
    assert outcomes[0].note == "ok after 3 attempts (0)"
    assert store.load("unit").steps["provision"].status == "ok"  # type: ignore[union-attr]


def test_an_interrupt_between_steps_names_the_last_step_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C after a step's result is saved, before the next begins: the run's own Interrupted (exit 130, so the
    session prints resume and teardown), naming the step done; a bare KeyboardInterrupt said "no step was running"."""

    def quick(ctx: StepContext) -> StepGen:
        yield from ()
        return "done"

    class CtrlCAtSecondStart(Quiet):
        def step_started(self, index: int, total: int, kind: str, timeout: float | None = None) -> None:
            if index == 2:
                raise KeyboardInterrupt

    monkeypatch.setitem(STEPS, "provision", quick)
    ctx = StepContext(cfg=make_cfg(), dep=Deployment(name="unit", config_path="c"), store=StateStore(tmp_path))
    book = Playbook(name="t", steps=[PlaybookStep(kind="provision"), PlaybookStep(kind="provision")])
    with pytest.raises(Interrupted, match="^interrupted after step provision$"):
        Runner(Scripted([]), CtrlCAtSecondStart()).run(book, ctx)
    assert ctx.dep.steps["provision"].status == "ok"


def test_non_transient_failure_is_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}

    def bad(ctx: StepContext) -> StepGen:
        calls["n"] += 1
        yield Local(("upctl",), "x")
        raise ProviderError("invalid plan")

    monkeypatch.setitem(STEPS, "provision", bad)
    ctx = StepContext(cfg=make_cfg(), dep=Deployment(name="unit", config_path="c"), store=StateStore(tmp_path))
    with pytest.raises(ProviderError):
        Runner(Scripted([]), Quiet()).run(Playbook(name="t", steps=[PlaybookStep(kind="provision", retries=3)]), ctx)
    assert calls["n"] == 1
    assert ctx.dep.steps["provision"].status == "failed"


def test_executor_errors_are_thrown_into_the_step(tmp_path: Path) -> None:
    """stop-engine tolerates an unreachable host: the error reaches the step, which carries on."""
    ctx = StepContext(cfg=make_cfg(), dep=Deployment(name="unit", config_path="c"), store=StateStore(tmp_path))
    ctx.dep.server = ServerRecord(uuid="00aa", ip="127.0.0.9")
    from orchestrator.state import EngineRecord

    ctx.dep.engine = EngineRecord(kind="vllm", model="m", served_name="m", endpoint="e", metrics_url="u", method="pip")
    executor = Scripted([("ssh: connect", SSHError("unreachable"))])
    outcomes = Runner(executor, Quiet()).run(Playbook(name="t", steps=[PlaybookStep(kind="stop-engine")]), ctx)
    assert outcomes[0].note == "skipped: unreachable"


@pytest.mark.parametrize(
    "shown, note",
    [
        (Result(stdout=json.dumps({"uuid": "00aa", "state": "stopped"})), "skipped: the server is stopped"),
        (Result(rc=1, stderr="Error: cannot resolve argument: nothing found matching '00aa'\n"), "already gone"),
    ],
)
def test_stop_engine_asks_the_cloud_before_it_connects(tmp_path: Path, shown: Result, note: str) -> None:
    """A stopped server answers no SSH (connecting would wait out the timeout) and a deleted one's address may be
    someone else's: stop-engine makes no connection to either."""
    from orchestrator.state import EngineRecord

    ctx = StepContext(cfg=make_cfg(), dep=Deployment(name="unit", config_path="c"), store=StateStore(tmp_path))
    ctx.dep.server = ServerRecord(uuid="00aa", ip="127.0.0.9")
    ctx.dep.engine = EngineRecord(kind="vllm", model="m", served_name="m", endpoint="e", metrics_url="u", method="pip")
    executor = Scripted([("server show", shown)])
    outcomes = Runner(executor, Quiet()).run(Playbook(name="t", steps=[PlaybookStep(kind="stop-engine")]), ctx)
    assert note in outcomes[0].note
    assert executor.seen == ["local: upctl server show 00aa -o json"]
    assert ctx.found_gone is (note == "already gone")
    started = Scripted([("server show", SHOW_STARTED)])  # a running server: the engine is stopped over SSH
    ctx2 = StepContext(cfg=make_cfg(), dep=ctx.dep, store=None)
    Runner(started, Quiet()).run(Playbook(name="t", steps=[PlaybookStep(kind="stop-engine")]), ctx2)
    assert [x.split(":")[0] for x in started.seen] == ["local", "ssh", "remote"]


def test_step_timeout_bounds_action_timeouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []

    def slow(ctx: StepContext) -> StepGen:
        yield Remote("sleep 1000", "long", timeout=3600)
        return None

    class Capture(Scripted):
        def execute(self, action: Action) -> Result:
            assert isinstance(action, Remote)
            seen.append(action.timeout)
            return Result()

    monkeypatch.setitem(STEPS, "install-stack", slow)
    ctx = StepContext(cfg=make_cfg(), dep=Deployment(name="unit", config_path="c"), store=None)
    Runner(Capture([]), Quiet()).run(Playbook(name="t", steps=[PlaybookStep(kind="install-stack", timeout=30)]), ctx)
    assert 0 < seen[0] <= 30


def test_shipped_playbooks_load() -> None:
    for name in ("deploy", "redeploy", "teardown"):
        book = load_playbook(name)
        assert all(step.kind in STEPS for step in book.steps)


# --- the real teardown playbook: local clean-up never keeps a server billing ------------------------------

SHOW_STOPPED = Result(stdout=json.dumps({"uuid": "00aa", "hostname": "unit", "state": "stopped"}))
SHOW_STARTED = Result(stdout=json.dumps({"uuid": "00aa", "hostname": "unit", "state": "started"}))
GONE = Result(rc=1, stderr="Error: cannot resolve argument: nothing found matching '00aa'\n")


def _tracked(tmp_path: Path) -> tuple[StepContext, StateStore, Path]:
    from orchestrator.state import EngineRecord, MonitoringRecord

    prom = tmp_path / "prom" / "prometheus.yml"
    cfg = DeploymentConfig.model_validate(
        {"name": "unit", "engine": {"model": "m"}, "monitoring": {"prometheus_config": str(prom), "promtool": "never"}}
    )
    store = StateStore(tmp_path / "home")
    dep = Deployment(name="unit", config_path="c", server=ServerRecord(uuid="00aa", ip="127.0.0.9"))
    dep.engine = EngineRecord(kind="vllm", model="m", served_name="m", endpoint="e", metrics_url="u", method="pip")
    dep.monitoring = MonitoringRecord(prometheus_config=str(prom), job="orchestrator-unit")
    store.save(dep)
    return StepContext(cfg=cfg, dep=dep, store=store), store, prom


def test_real_teardown_deletes_the_server_when_unmonitor_fails_then_a_rerun_finishes(tmp_path: Path) -> None:
    ctx, store, prom = _tracked(tmp_path)
    broken = Result(stdout="global: [unclosed\nscrape_configs:\n  - job_name: orchestrator-unit\n")
    executor = Scripted(
        [("server show", SHOW_STARTED), ("read: ", broken), ("server show", SHOW_STOPPED), ("server show", GONE)]
    )
    with pytest.raises(TeardownIncomplete) as err:
        Runner(executor, Quiet()).run(load_playbook("teardown"), ctx)
    assert err.value.exit_code == 10
    assert err.value.message.startswith(
        f"teardown incomplete: unmonitor: scrape job orchestrator-unit is still in {prom}: "
    )
    assert "not valid YAML" in err.value.message
    # the cloud deletion ran after the local failure
    read_at = next(i for i, x in enumerate(executor.seen) if x.startswith("read: "))
    assert any("server delete 00aa --delete-storages" in x for x in executor.seen[read_at:])
    kept = store.load("unit")
    assert kept is not None and kept.server is None and kept.engine is None
    assert (kept.monitoring.prometheus_config, kept.monitoring.job) == (str(prom), "orchestrator-unit")
    assert kept.steps["destroy-server"].status == "ok" and kept.steps["unmonitor"].status == "failed"

    # Fixed file: a second teardown removes the job, touches no cloud server, and forgets the deployment.
    ctx2 = StepContext(cfg=ctx.cfg, dep=kept, store=store)
    fixed = Result(stdout="scrape_configs:\n  - job_name: orchestrator-unit\n  - job_name: other\n")
    again = Scripted([("read: ", fixed)])
    Runner(again, Quiet()).run(load_playbook("teardown"), ctx2)
    assert store.load("unit") is None
    assert not any("upctl" in x for x in again.seen)
    written = [x for x in again.seen if x.startswith("write: ")]
    assert written == [f"write: {prom} (mode 0644 if new, else its mode and owner kept, 36 bytes)"]


def test_real_teardown_goes_on_after_an_unexpected_error_in_local_cleanup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy(ctx: StepContext) -> StepGen:
        yield Local(("true",), "x")
        raise ValueError("a bug")

    monkeypatch.setitem(STEPS, "unmonitor", buggy)
    ctx, store, _prom = _tracked(tmp_path)
    executor = Scripted([("server show", SHOW_STARTED), ("server show", SHOW_STOPPED), ("server show", GONE)])
    with pytest.raises(TeardownIncomplete) as err:
        Runner(executor, Quiet()).run(load_playbook("teardown"), ctx)
    assert "unmonitor: unexpected ValueError: a bug" in err.value.message
    assert any("server delete 00aa" in x for x in executor.seen)
    kept = store.load("unit")
    assert kept is not None and kept.server is None  # kept: a re-run retries the clean-up


def test_step_without_continue_on_error_still_stops_the_playbook(tmp_path: Path) -> None:
    ctx, store, _prom = _tracked(tmp_path)
    book = Playbook(name="teardown", steps=[PlaybookStep(kind="unmonitor"), PlaybookStep(kind="destroy-server")])
    executor = Scripted([("read: ", Result(stdout="global: [unclosed\n"))])
    with pytest.raises(MonitoringError):
        Runner(executor, Quiet()).run(book, ctx)
    assert not any("upctl" in x for x in executor.seen)


@pytest.mark.parametrize(
    "provider, drift",
    [
        ({"plan": "GPU-12xCPU-128GB-2xL40S"}, True),  # the config now asks for another plan
        ({"zone": "de-fra1"}, True),  # ... or another zone
        ({"plan": "^GPU-.*-1xL40S$"}, False),  # a pattern the server's plan matches
        ({"plan": "GPU-12xCPU-128GB-2xL40S", "fallbacks": [{"plan": "GPU-8xCPU-64GB-1xL40S"}]}, False),  # a fallback
    ],
)
def test_a_recorded_server_on_another_plan_or_zone_is_kept_and_said(provider: dict[str, object], drift: bool) -> None:
    """A plan or zone changes only with a new server (`redeploy --recreate`): deploy keeps the recorded one, and says
    so when the config no longer asks for what it runs."""
    cfg = DeploymentConfig.model_validate({"name": "unit", "engine": {"model": "m"}, "provider": provider})
    told: list[str] = []
    ctx = StepContext(cfg=cfg, dep=Deployment(name="unit", config_path="/c.yaml"), store=None, notify=told.append)
    ctx.dep.server = ServerRecord(uuid="00aa")
    shown = {"uuid": "00aa", "hostname": "unit", "state": "started", "plan": "GPU-8xCPU-64GB-1xL40S",
             "zone": "fi-hel2", "ip_addresses": []}  # fmt: skip
    outcomes = Runner(Scripted([("server show", Result(stdout=json.dumps(shown)))]), Quiet()).run(
        Playbook(name="t", steps=[PlaybookStep(kind="provision")]), ctx
    )
    assert outcomes[0].note.startswith("server 00aa already exists")
    assert ("not provider.plan" in outcomes[0].note) is drift
    if drift:
        assert told == [
            f"server 00aa runs plan GPU-8xCPU-64GB-1xL40S in fi-hel2, not what the config asks for (provider.plan "
            f"{cfg.provider.plan!r} in {cfg.provider.zone}); it is kept: a plan or zone changes only with a new "
            "server, `orchestrator redeploy /c.yaml --recreate`"
        ]
    else:
        assert told == []


def test_wait_started_stops_at_once_on_error_state(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.steps.provision import wait_started

    ctx = StepContext(cfg=make_cfg(), dep=Deployment(name="unit", config_path="c"), store=None)
    ctx.dep.server = ServerRecord(uuid="00aa")
    error = Result(stdout=json.dumps({"uuid": "00aa", "hostname": "unit", "state": "error"}))
    executor = Scripted([("server show", error)])
    monkeypatch.setitem(STEPS, "provision", wait_started)
    with pytest.raises(ProviderError) as err:
        Runner(executor, Quiet()).run(Playbook(name="t", steps=[PlaybookStep(kind="provision")]), ctx)
    assert "state 'error'" in err.value.message
    assert executor.seen == ["local: upctl server show 00aa -o json"]  # one look, no 15 minutes of polling
    assert ctx.dep.server.state == "error"


def test_teardown_does_not_poll_a_server_in_error_for_stopped(tmp_path: Path) -> None:
    ctx, store, _prom = _tracked(tmp_path)
    error = Result(stdout=json.dumps({"uuid": "00aa", "hostname": "unit", "state": "error"}))
    executor = Scripted([("server show", error), ("server show", GONE)])
    book = Playbook(name="teardown", steps=[PlaybookStep(kind="destroy-server")])
    Runner(executor, Quiet()).run(book, ctx)
    assert [x.split(" 00aa")[0] for x in executor.seen] == [
        "local: upctl server show", "local: upctl server delete", "local: upctl server show",
    ]  # fmt: skip
    assert ctx.dep.server is None


@pytest.mark.parametrize("kind", sorted(CATEGORY))
def test_a_failed_command_takes_its_steps_category(kind: str) -> None:
    """Every step category can carry the command's output (connect's SSHError and provision's ProviderError
    could not: a timed-out command there was a TypeError instead of exit 5 / 3)."""
    from orchestrator.errors import CommandFailed
    from orchestrator.runner import _categorised, _mapped

    err = _mapped(kind, CommandFailed(["sh", "-c", "printf %s \"$HOME\""], 124, "", "timed out after 15s"))
    assert type(err) is CATEGORY[kind] and err.message.startswith(f"{kind}: ") and "timed out" in (err.details or "")
    plain = _categorised(kind, OrchestratorError("cannot open lock file /x/.lock", "make /x writable"))
    assert type(plain) is CATEGORY[kind] and (plain.message, plain.hint) == ("cannot open lock file /x/.lock",
                                                                            "make /x writable")  # fmt: skip
    typed = SSHError("unreachable")
    assert _categorised(kind, typed) is typed  # a typed error keeps its own category
