"""The light state reader (state_doc.py) and the pydantic models (state.py) describe the same documents: the same
defaults, and every document StateStore writes reads back through the light reader field for field. The status and
ssh and logs paths never import pydantic or typer, and their typer-free parsers pass what typer would pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from orchestrator.errors import StateError
from orchestrator.state import (
    Deployment,
    EngineRecord,
    HealthRecord,
    MonitoringRecord,
    ServerRecord,
    StateStore,
    StepRecord,
)
from orchestrator.state_doc import (
    DEPLOYMENT_DEFAULTS,
    DEPLOYMENT_REQUIRED,
    RECORDS,
    TIME_KEYS,
    DeploymentView,
    EngineView,
    HealthView,
    ServerView,
    StateReader,
)
from tests.conftest import REPO

MODELS: dict[str, type[BaseModel]] = {
    "server": ServerRecord,
    "engine": EngineRecord,
    "health": HealthRecord,
    "step": StepRecord,
    "monitoring": MonitoringRecord,
}


def _split(model: type[BaseModel]) -> tuple[set[str], dict[str, object]]:
    required = {k for k, f in model.model_fields.items() if f.is_required()}
    fields = model.model_fields.items()
    defaults = {k: f.get_default(call_default_factory=True) for k, f in fields if not f.is_required()}
    return required, defaults


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_record_keys_and_defaults_are_the_models(kind: str) -> None:
    required, defaults = _split(MODELS[kind])
    assert set(RECORDS[kind][0]) == required
    assert RECORDS[kind][1] == defaults


def test_deployment_keys_and_defaults_are_the_models() -> None:
    required, defaults = _split(Deployment)
    assert set(DEPLOYMENT_REQUIRED) == required
    for key in TIME_KEYS:
        assert key in defaults  # a time.time() default: the light reader fills in "now" as well
        defaults.pop(key)
    defaults["monitoring"] = None  # the light reader fills the record from RECORDS["monitoring"]
    assert defaults == DEPLOYMENT_DEFAULTS


def _full() -> Deployment:
    return Deployment(
        name="full",
        config_path="/c.yaml",
        created_at=1700000000.0,
        status="deployed",
        server=ServerRecord(
            uuid="00aa", hostname="full", plan="GPU-8xCPU-64GB-1xL40S", zone="fi-hel2", ip="203.0.113.7",
            state="started", gpu_amount=1, gpu_model="NVIDIA L40S", host_key="ssh-ed25519 AAAAkey",
        ),
        engine=EngineRecord(
            kind="vllm", model="m", served_name="s", endpoint="http://203.0.113.7:8000/v1",
            metrics_url="http://203.0.113.7:8000/metrics", method="pip", pid=42, config_hash="abc",
        ),
        health=HealthRecord(ok=False, checked_at=1700000100.5, detail="503", time_to_healthy=12.0),
        monitoring=MonitoringRecord(prometheus_config="/p.yml", job="j", file_sd="/f.json", run_metrics="/r.prom"),
        steps={"provision": StepRecord(status="ok", finished_at=1700000050.0, seconds=50.0, note="n")},
        last_error="boom",
        auto_stop_at=1700003600.0,
        config={"provider": {"price_per_hour": 1.5}, "ssh": {"user": "root", "port": 22, "private_key": "/k/id"}},
    )  # fmt: skip


@pytest.mark.parametrize("dep", [_full(), Deployment(name="bare", config_path="/b.yaml")], ids=["full", "bare"])
def test_what_state_store_writes_reads_back_through_the_light_reader(tmp_path: Path, dep: Deployment) -> None:
    StateStore(tmp_path).save(dep)
    stored = StateStore(tmp_path).load(dep.name)
    light = StateReader(tmp_path).load(dep.name)
    assert stored is not None and light is not None
    assert light.document == stored.model_dump(mode="json")  # `status --json` prints this document
    for view, model in ((light, stored), (light.server, stored.server), (light.engine, stored.engine),
                        (light.health, stored.health)):  # fmt: skip
        if model is None:
            assert view is None
            continue
        assert view is not None
        for field in view._fields:
            if field == "document":
                continue
            want = getattr(model, field)
            got = getattr(view, field)
            if isinstance(want, BaseModel):
                assert got is not None and want.model_dump() == {k: getattr(got, k) for k in got._fields} | {
                    k: v for k, v in want.model_dump().items() if k not in got._fields
                }
            else:
                assert got == want, field
    assert StateReader(tmp_path).names() == StateStore(tmp_path).names() == [dep.name]


def test_a_document_without_its_keys_defaults_like_the_model(tmp_path: Path) -> None:
    """An older document (keys added since, with defaults) reads the same way through both."""
    raw = {"kind": "orchestrator/deployment", "schema_version": 1, "name": "old", "config_path": "/o.yaml",
           "created_at": 1.0, "updated_at": 2.0, "server": {"uuid": "00cc"}, "steps": {"s": {"status": "ok",
           "finished_at": 3.0, "seconds": 1.0}}}  # fmt: skip
    store = StateStore(tmp_path)
    store.dir.mkdir(parents=True)
    store.path("old").write_text(json.dumps(raw))
    stored = store.load("old")
    light = StateReader(tmp_path).load("old")
    assert stored is not None and light is not None
    assert light.document == stored.model_dump(mode="json")


@pytest.mark.parametrize(
    "content, words",
    [
        ("{not json", "corrupt"),
        ('{"kind": "something-else"}', "not an orchestrator"),
        ('{"kind": "orchestrator/deployment", "schema_version": 99}', "schema_version"),
        ('{"kind": "orchestrator/deployment", "schema_version": 1, "name": "x"}', "invalid at config_path"),
        ('{"kind": "orchestrator/deployment", "schema_version": 1, "name": "x", "config_path": "",'
         ' "server": {"ip": "1.2.3.4"}}', "invalid at server.uuid"),
    ],
)  # fmt: skip
def test_both_readers_refuse_the_same_bad_files(tmp_path: Path, content: str, words: str) -> None:
    store = StateStore(tmp_path)
    store.dir.mkdir(parents=True)
    store.path("bad").write_text(content)
    for reader in (store, StateReader(tmp_path)):
        with pytest.raises(StateError) as err:
            reader.load("bad")
        assert str(store.path("bad")) in err.value.message and words in err.value.message


def test_status_shows_every_readable_deployment_then_names_the_bad_files(tmp_path: Path) -> None:
    """One unreadable state file does not hide the others: `status` shows them, then fails (exit 11) naming each
    bad file; with --json the one error document carries the deployments that could be read."""
    from tests.conftest import run_cli

    StateStore(tmp_path).save(_full())
    (tmp_path / "deployments" / "bad.json").write_text("{not json")
    env = {"ORCHESTRATOR_HOME": str(tmp_path)}
    text = run_cli("status", "--local", env=env)
    assert text.returncode == 11, text.stderr
    assert text.stdout.splitlines()[1].startswith("full ") and "203.0.113.7" in text.stdout
    assert f"error: state file {tmp_path / 'deployments' / 'bad.json'} is corrupt" in text.stderr
    doc = json.loads(run_cli("status", "--local", "--json", env=env).stdout)
    assert doc["ok"] is False and doc["exit_code"] == 11 and "bad.json is corrupt" in doc["error"]
    assert [d["name"] for d in doc["deployments"]] == ["full"]
    (tmp_path / "deployments" / "worse.json").write_text('{"kind": "something-else"}')
    both = run_cli("status", "--local", env=env)
    assert both.returncode == 11 and "error: 2 state files could not be read: " in both.stderr, both.stderr
    assert "bad.json is corrupt" in both.stderr and "worse.json is not an orchestrator" in both.stderr
    assert run_cli("status", "full", "--local", env=env).returncode == 0  # NAME reads its own file only


def test_views_name_only_model_fields() -> None:
    pairs = ((DeploymentView, Deployment), (ServerView, ServerRecord), (EngineView, EngineRecord),
             (HealthView, HealthRecord))  # fmt: skip
    for view, model in pairs:
        assert set(view._fields) - {"document"} <= set(model.model_fields), view


# Runs the CLI with the given arguments, then prints which heavy modules it imported.
HEAVY_CHECK = (
    "import sys; sys.argv = ['orchestrator'] + sys.argv[1:]\n"
    "from orchestrator.entry import main\n"
    "try:\n    main()\n"
    "finally:\n"
    "    heavy = sorted(m for m, mod in sys.modules.items() if mod is not None\n"
    "                   and m.split('.')[0] in ('pydantic', 'typer', 'click', 'httpx',"
    " 'paramiko', 'rich', 'yaml'))\n"
    "    print('HEAVY', heavy, file=sys.stderr)\n"
)


def test_the_status_path_imports_neither_pydantic_nor_typer(tmp_path: Path) -> None:
    StateStore(tmp_path).save(_full())
    code = HEAVY_CHECK
    env = {"ORCHESTRATOR_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ssh").write_text("#!/bin/sh\necho \"ssh $*\"\n")  # OpenSSH's place: print the argv
    (tmp_path / "bin" / "ssh").chmod(0o755)
    env["PATH"] = f"{tmp_path / 'bin'}:{env['PATH']}"
    for argv in (["status", "--local"], ["status", "full", "--local", "--json"], ["ssh", "full", "--", "true"]):
        proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "HEAVY []" in proc.stderr, proc.stderr
        assert "full" in proc.stdout or argv[0] == "ssh"
    assert "StrictHostKeyChecking=yes" in proc.stdout and "root@203.0.113.7 true" in proc.stdout
    assert "203.0.113.7 ssh-ed25519 AAAAkey orchestrator:full" in (tmp_path / "known_hosts").read_text()


def test_the_logs_path_imports_neither_pydantic_nor_typer_nor_paramiko(tmp_path: Path) -> None:
    """`logs NAME` builds the engine's log command from the config snapshot and runs it over OpenSSH (here a
    script that prints its argv): none of the heavy modules, and the pinned key written to known_hosts."""
    from orchestrator.config import DeploymentConfig

    cfg = DeploymentConfig.model_validate(
        {"name": "snap", "engine": {"model": "m"}, "ssh": {"user": "ubuntu", "port": 2222, "private_key": "/k/id"}}
    )
    StateStore(tmp_path).save(_full().model_copy(update={"name": "snap", "config": cfg.model_dump(mode="json")}))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ssh").write_text('#!/bin/sh\necho "ssh $*"\n')
    (tmp_path / "bin" / "ssh").chmod(0o755)
    env = {"ORCHESTRATOR_HOME": str(tmp_path), "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    argv = ["logs", "snap", "-n", "5", "--debug"]
    proc = subprocess.run([sys.executable, "-c", HEAVY_CHECK, *argv], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr, proc.stderr
    assert proc.stdout.startswith("remote: tail -n 5 .orchestrator/snap/engine.log\nssh -o "), proc.stdout
    assert "StrictHostKeyChecking=yes" in proc.stdout
    assert proc.stdout.endswith(" -p 2222 -- ubuntu@203.0.113.7 tail -n 5 .orchestrator/snap/engine.log\n")
    assert "[203.0.113.7]:2222 ssh-ed25519 AAAAkey orchestrator:snap" in (tmp_path / "known_hosts").read_text()
    since = subprocess.run([sys.executable, "-c", HEAVY_CHECK, "logs", "snap", "--since", "1h"], cwd=REPO, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert since.returncode == 2 and "--since is not supported for vLLM's pip method" in since.stderr, since.stderr
    assert "HEAVY []" in since.stderr and since.stdout == ""


def test_the_fast_status_parser_accepts_what_cli_declares(monkeypatch: pytest.MonkeyPatch) -> None:
    """entry.py's parser knows exactly `status`'s options (but --orphans and --help, left to typer), and for every
    argument list it takes, typer would call commands.status.status with the same keyword arguments."""
    from typer.main import get_command

    from orchestrator import cli
    from orchestrator.commands import status as status_mod
    from orchestrator.entry import STATUS_FLAGS, fast_status_args

    command = get_command(cli.app).commands["status"]  # type: ignore[attr-defined]
    declared = {opt for p in command.params for opt in getattr(p, "opts", []) if opt.startswith("--")}
    assert declared - {"--orphans", "--help"} == set(STATUS_FLAGS)
    seen: list[dict[str, object]] = []
    monkeypatch.setattr(status_mod, "status", lambda name, **kw: seen.append({"name": name, **kw}))
    for args in ([], ["n"], ["n", "--json"], ["--local", "n", "--debug"], ["--live", "--json"], ["--json", "--local"]):
        fast = fast_status_args(args)
        assert fast is not None, args
        get_command(cli.app).main(["status", *args], standalone_mode=False, prog_name="orchestrator")
        assert seen.pop() == fast, args
    for args in (["--help"], ["a", "b"], ["--orphans"], ["--jsn"], ["-h"], ["--", "n"]):
        assert fast_status_args(args) is None, args


def test_the_fast_ssh_parser_passes_what_typer_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """entry.py's `ssh` parser: options only before NAME, the rest verbatim (a leading `--` included), as click
    does with allow_interspersed_args=False; anything else is left to typer."""
    from typer.main import get_command

    from orchestrator import cli
    from orchestrator.commands import ssh as ssh_mod
    from orchestrator.entry import fast_ssh_args

    command = get_command(cli.app).commands["ssh"]  # type: ignore[attr-defined]
    assert {opt for p in command.params for opt in getattr(p, "opts", []) if opt.startswith("--")} == {"--debug"}
    seen: list[tuple[str, list[str], bool]] = []

    def capture(name: str, argv: list[str], *, debug: bool) -> int:
        seen.append((name, argv, debug))
        return 0

    monkeypatch.setattr(ssh_mod, "ssh", capture)
    samples = (["n"], ["n", "--", "a", "b"], ["--debug", "n", "--", "x"], ["n", "--debug"], ["n", "a", "-b"],
               ["n", "--", "--debug"], ["n", "-L"])  # fmt: skip
    for args in samples:
        fast = fast_ssh_args(args)
        assert fast is not None, args
        get_command(cli.app).main(["ssh", *args], standalone_mode=False, prog_name="orchestrator")
        assert seen.pop() == fast, args
    for args in ([], ["--help"], ["--", "n"], ["-x", "n"], [""]):
        assert fast_ssh_args(args) is None, args


def test_the_fast_logs_parser_passes_what_typer_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """entry.py's `logs` parser knows exactly `logs`'s options (but --help), and for every argument list it takes,
    typer would call commands.logs.logs with the same values; anything else is left to typer."""
    from typer.main import get_command

    from orchestrator import cli
    from orchestrator.commands import logs as logs_mod
    from orchestrator.entry import LOGS_FLAGS, LOGS_TAIL, LOGS_VALUES, fast_logs_args

    command = get_command(cli.app).commands["logs"]  # type: ignore[attr-defined]
    declared = {opt for p in command.params for opt in getattr(p, "opts", []) if opt.startswith("-")}
    assert declared - {"--help"} == set(LOGS_FLAGS) | set(LOGS_VALUES)
    assert {p.name: p.default for p in command.params}["tail"] == LOGS_TAIL
    seen: list[dict[str, object]] = []

    def capture(name: str, **kw: object) -> int:
        seen.append({"name": name, **kw})
        return 0

    monkeypatch.setattr(logs_mod, "logs", capture)
    samples = (["n"], ["n", "-f"], ["--follow", "n", "--tail", "5"], ["n", "-n", "0", "--since", "10m", "--debug"],
               ["--since", "-x", "n"], ["n", "--since", ""], ["n", "--tail", "3", "--tail", "007"],
               ["-f", "-f", "n", "--debug"], ["n", "--since", "1h", "--since", "2h"])  # fmt: skip
    for args in samples:
        fast = fast_logs_args(args)
        assert fast is not None, args
        get_command(cli.app).main(["logs", *args], standalone_mode=False, prog_name="orchestrator")
        assert seen.pop() == fast, args
    refused = ([], ["--help"], ["a", "b"], ["n", "--tail"], ["n", "--tail", "-3"], ["n", "--tail", "x"],
               ["n", "--tail=5"], ["n", "-fn5"], ["--", "n"], [""], ["n", "--since"], ["n", "--tail", "٣"])  # fmt: skip
    for args in refused:
        assert fast_logs_args(args) is None, args
