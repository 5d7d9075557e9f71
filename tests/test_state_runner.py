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
from orchestrator.errors import ProviderError, SSHError, StateError
from orchestrator.playbook import Playbook, PlaybookStep, load_playbook
from orchestrator.runner import Runner, StepOutcome
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
    def step_started(self, index: int, total: int, kind: str) -> None: ...
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
    assert outcomes[0].note == "skipped: host unreachable"


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
    assert json.dumps([s.kind for s in load_playbook("teardown").steps]) == (
        '["stop-engine", "unmonitor", "destroy-server", "forget"]'
    )
