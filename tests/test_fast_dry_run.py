"""The typer-free dry-run path (entry.py): `deploy|redeploy|teardown ... --dry-run` and `validate` answer byte for
byte what the typer CLI answers (stdout, stderr, exit code: plans, refusals and errors), without loading typer,
the network libraries or rich; and entry.py's parser passes what typer would pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.golden_cases import _env, _state_record, plannable

CONFIGS = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "configs").glob("*.yaml"))
# Modules a dry run must not load: the CLI framework, the network libraries, the live display, the exporter, and
# the standard library's package-metadata and zip readers (pydantic's plugin scan, importlib.resources: entry.py's
# plugin-loader stand-in and orchestrator.package_path keep them out).
HEAVY = ("typer", "click", "httpx", "paramiko", "rich", "prometheus_client", "importlib.metadata", "zipfile")

# The console script's way in (entry.main); when it exits, the heavy modules it loaded go to $HEAVY_OUT.
ENTRY = (
    "import os, sys; sys.argv[0] = 'orchestrator'\n"
    "from orchestrator.entry import main\n"
    "try:\n    main()\n"
    "finally:\n"
    f"    heavy = sorted(m for m, mod in sys.modules.items() if mod is not None\n"
    f"                   and any(m == h or m.startswith(h + '.') for h in {HEAVY!r}))\n"
    "    open(os.environ['HEAVY_OUT'], 'w').write(' '.join(heavy))\n"
)
TYPER = "import sys; sys.argv[0] = 'orchestrator'; from orchestrator.cli import main; main()"

Outcome = tuple[int, str, str]
SECONDS = re.compile(r'"seconds": [0-9.e-]+')


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The golden cases' environment, with a deployed record of every config deploy plans (redeploy, teardown)."""
    tmp = tmp_path_factory.mktemp("fast-dry")
    e = _env(tmp) | {"HEAVY_OUT": str(tmp / "heavy.txt")}
    for config in CONFIGS:
        if plannable(REPO / config):
            _state_record(config, _name(config), e)
    return e


def _name(config: str) -> str:
    return str(yaml.safe_load((REPO / config).read_text())["name"])


def _run(code: str, argv: list[str], env: dict[str, str]) -> Outcome:
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout, proc.stderr


def fast(argv: list[str], env: dict[str, str]) -> tuple[Outcome, list[str]]:
    """The entry point's outcome, and the heavy modules it loaded."""
    Path(env["HEAVY_OUT"]).unlink(missing_ok=True)
    outcome = _run(ENTRY, argv, env)
    return outcome, Path(env["HEAVY_OUT"]).read_text().split()


def _untimed(outcome: Outcome) -> Outcome:
    """A --json document's step durations differ from run to run (the one thing that may)."""
    code, out, err = outcome
    return code, SECONDS.sub('"seconds": S', out), err


def assert_same(argv: list[str], env: dict[str, str]) -> Outcome:
    """Both ways in give the same outcome, and the entry point took its fast path (no typer)."""
    got, heavy = fast(argv, env)
    assert heavy == [], (argv, heavy)
    want = _run(TYPER, argv, env)
    assert _untimed(got) == _untimed(want), argv
    return got


@pytest.mark.parametrize("config", CONFIGS)
def test_dry_runs_and_validate_are_the_typer_cli_byte_for_byte(config: str, env: dict[str, str]) -> None:
    """Every config: each command's dry run (text and --json) and validate. A `cluster:` config (a Ray cluster)
    is planned by deploy the same way either way; redeploy/teardown have no record of it here (exit 11)."""
    name, ok = _name(config), plannable(REPO / config)
    runs = {
        "deploy": assert_same(["deploy", config, "--dry-run"], env),
        "deploy --json": assert_same(["deploy", "--json", config, "--dry-run"], env),
        "redeploy": assert_same(["redeploy", config, "--dry-run"], env),
        "redeploy --recreate --json": assert_same(["redeploy", config, "--dry-run", "--recreate", "--json"], env),
        "teardown NAME": assert_same(["teardown", name, "--dry-run"], env),
        "teardown CONFIG --json": assert_same(["teardown", config, "--dry-run", "--json"], env),
        "validate": assert_same(["validate", config], env),
        "validate --json": assert_same(["validate", config, "--json"], env),
    }
    assert runs["validate"][0] == runs["validate --json"][0] == 0
    if ok:
        assert all(code == 0 for code, _out, _err in runs.values()), runs
        assert runs["deploy"][1].startswith(f"Dry run of `deploy` for deployment {name} ({config})")
        assert '"dry_run": true' in runs["teardown CONFIG --json"][1]
    else:  # a Ray cluster: deploy plans it; this env holds no record of it, so redeploy/teardown NAME exit 11
        code, out, err = runs["deploy"]
        assert code == 0 and "Dry run complete" in out, err
        assert runs["deploy --json"][0] == 0
        assert runs["redeploy"][0] == runs["teardown NAME"][0] == 11


def test_errors_are_the_typer_cli_byte_for_byte(env: dict[str, str], tmp_path: Path) -> None:
    """A missing file, malformed YAML, an unknown key, an unknown deployment: the same error:/hint: lines, the
    same JSON error object and exit code."""
    (tmp_path / "bad.yaml").write_text("name: x\nengine: [\n")
    (tmp_path / "key.yaml").write_text("name: x\nengine:\n  model: m\n  modle: typo\n")
    missing, bad, key = str(tmp_path / "missing.yaml"), str(tmp_path / "bad.yaml"), str(tmp_path / "key.yaml")
    expected = {
        ("deploy", missing, "--dry-run"): 2,
        ("deploy", bad, "--dry-run", "--json"): 2,
        ("redeploy", key, "--dry-run"): 2,
        ("validate", key, "--json"): 2,
        ("validate", bad): 2,
        ("teardown", "no-such-deployment", "--dry-run"): 11,
        ("teardown", "no-such-deployment", "--dry-run", "--json", "--debug"): 11,
        ("deploy", CONFIGS[0], "--dry-run", "--debug", "--teardown-on-failure"): 0,
    }
    for argv, code in expected.items():
        got = assert_same(list(argv), env)
        assert got[0] == code, (argv, got)
        if code:
            assert "error: " in got[2], (argv, got)
        if argv[:2] == ("teardown", "no-such-deployment"):  # its server may still bill: say how to find it
            assert "`orchestrator status --orphans`, then `orchestrator teardown --orphans`" in got[2], got


def test_the_dry_run_path_loads_no_cli_framework_network_library_or_display(env: dict[str, str]) -> None:
    """A plain check, apart from the comparison: the fast path's imports (pydantic and yaml are expected)."""
    config = next(c for c in CONFIGS if plannable(REPO / c))
    for argv in (["deploy", config, "--dry-run", "--json"], ["teardown", _name(config), "--dry-run"],
                 ["validate", config]):  # fmt: skip
        (code, out, err), heavy = fast(argv, env)
        assert code == 0, err
        assert heavy == [], (argv, heavy)
    # and what is left to typer still goes there (a real deploy would need it to ask, --help to print)
    (code, out, _err), heavy = fast(["deploy", "--help"], env)
    assert code == 0 and "--dry-run" in out and "typer" in heavy


def test_the_fast_config_parser_passes_what_typer_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """entry.py's parser knows exactly each command's options (but those it leaves to typer), and for every
    argument list it takes, typer would call commands.lifecycle with the same keyword arguments."""
    from typer.main import get_command

    from orchestrator import cli
    from orchestrator.commands import lifecycle
    from orchestrator.entry import CONFIG_COMMANDS, fast_config_args

    left_to_typer = {"deploy": set(), "redeploy": set(), "teardown": {"--orphans", "--include-foreign"}}
    seen: list[dict[str, object]] = []
    for command, (positional, flags) in CONFIG_COMMANDS.items():
        typer_command = get_command(cli.app).commands[command]  # type: ignore[attr-defined]
        declared = {opt for p in typer_command.params for opt in getattr(p, "opts", []) if opt.startswith("-")}
        assert declared - {"--help"} - left_to_typer.get(command, set()) == set(flags), command

        def capture(value: str | None, _key: str = positional, **kw: object) -> None:
            seen.append({_key: value, **kw})

        monkeypatch.setattr(lifecycle, command, capture)
    samples = [["deploy", "c.yaml", "--dry-run"], ["deploy", "--json", "--dry-run", "c.yaml", "--debug"],
               ["deploy", "c.yaml", "--dry-run", "--teardown-on-failure", "--dry-run"],
               ["redeploy", "c.yaml", "--recreate", "--dry-run"], ["teardown", "name", "--dry-run", "-y"],
               ["teardown", "--yes", "c.yml", "--dry-run", "--json"], ["validate", "c.yaml"],
               ["validate", "--debug", "c.yaml", "--json"], ["deploy", "c.yaml"], ["deploy", "--json", "c.yaml"],
               ["deploy", "c.yaml", "--teardown-on-failure"], ["redeploy", "--recreate", "c.yaml", "--debug"],
               ["teardown", "n", "--yes"], ["teardown", "-y", "c.yaml", "--json"]]  # fmt: skip
    for argv in samples:
        parsed = fast_config_args(argv[0], argv[1:])
        assert parsed is not None, argv
        get_command(cli.app).main(argv, standalone_mode=False, prog_name="orchestrator")
        assert seen.pop() == parsed, argv
    refused = [["teardown", "n"], ["teardown", "n", "--json"], ["deploy", "--dry-run"],
               ["deploy", "a.yaml", "b.yaml", "--dry-run"],
               ["deploy", "c.yaml", "--dry-run", "--help"], ["deploy", "--", "c.yaml", "--dry-run"],
               ["deploy", "", "--dry-run"], ["deploy", "c.yaml", "--dry-run=1"], ["redeploy", "c.yaml", "-r"],
               ["teardown", "--orphans", "--dry-run"], ["teardown", "n", "--include-foreign", "--dry-run"],
               ["validate"], ["validate", "c.yaml", "--dry-run"],
               ["validate", "c.yaml", "-h"]]  # fmt: skip
    for argv in refused:
        assert fast_config_args(argv[0], argv[1:]) is None, argv


PLUGINS_PROBE = (
    "import sys; sys.argv[1:] = ['validate', sys.argv.pop(1)]\n"  # a config command: pydantic validates
    "from orchestrator.entry import PLUGIN_LOADER, main\n"
    "try:\n    main()\n"
    "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
    "stand_in = sys.modules.get(PLUGIN_LOADER)\n"
    "print('stand-in' if stand_in is not None and stand_in.__spec__ is None else 'pydantic')\n"
    "from pydantic import BaseModel\n"
    "class M(BaseModel):\n    x: int\n"
    "assert M(x='1').x == 1\n"
    "print('importlib.metadata' in sys.modules)\n"
    "from pydantic.plugin._loader import get_plugins, PYDANTIC_ENTRY_POINT_GROUP\n"
    "print(list(get_plugins()), PYDANTIC_ENTRY_POINT_GROUP, 'importlib.metadata' in sys.modules)\n"
)


@pytest.mark.parametrize(
    ("setting", "want"),
    [(None, "stand-in"), ("__all__", "stand-in"), ("true", "stand-in"), ("some_plugin", "pydantic")],
)
def test_plugin_loader_stand_in_only_while_plugins_are_off(setting: str | None, want: str, tmp_path: Path) -> None:
    """With pydantic's plugins off (entry.py's default, or the user's own all-off value) the entry point puts a
    stand-in for pydantic's plugin loader in place before a command that uses pydantic: the config validates as
    usual, no plugin loads, and the standard library's entry-point reader is not imported; any other name asked of
    the loader loads the real module (which imports it). A user's own setting that turns some plugins off keeps
    pydantic's loader."""
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    env |= {"ORCHESTRATOR_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    if setting is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = setting
    demo = str(REPO / "configs" / "demo.yaml")
    proc = subprocess.run([sys.executable, "-c", PLUGINS_PROBE, demo], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    *_, which, reader_after_model, loaded = proc.stdout.splitlines()
    assert which == want
    assert reader_after_model == str(want == "pydantic")
    assert loaded == "[] pydantic True"  # the real module's constant, read through the stand-in or directly
