"""Bad configs exit 2 naming file, line and field, with no traceback and no upctl call."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.config import load_config
from orchestrator.errors import ConfigError
from tests.conftest import REPO, run_cli

GOOD = """\
name: demo
provider:
  zone: fi-hel2
engine:
  kind: vllm
  model: Qwen/Qwen2.5-0.5B-Instruct
  port: 8000
"""

CASES = {
    "unknown key": (
        GOOD.replace("  zone: fi-hel2", "  zone: fi-hel2\n  colour: blue"),
        4,
        "provider.colour",
        "unknown key 'colour'",
    ),
    "wrong type": (GOOD.replace("port: 8000", "port: eighty"), 7, "engine.port", "integer"),
    "unknown engine": (GOOD.replace("kind: vllm", "kind: llamacpp"), 5, "engine.kind", "vllm"),
    "bad port": (GOOD.replace("port: 8000", "port: 70000"), 7, "engine.port", "65535"),
    "missing model": (
        GOOD.replace("  model: Qwen/Qwen2.5-0.5B-Instruct\n", ""),
        4,
        "engine.model",
        "missing",
    ),
    "malformed yaml": (GOOD.replace("  zone: fi-hel2", "  zone: [fi-hel2"), None, None, "malformed YAML"),
    "torchserve": (GOOD.replace("kind: vllm", "kind: torchserve"), None, None, "archived"),
    "bad name": (GOOD.replace("name: demo", "name: Demo_1"), 1, "name", "a-z"),
    # two listeners on one port of the server: the engine could not start (or would shadow sshd)
    "engine on the SSH port": (
        GOOD.replace("port: 8000", "port: 22"),
        7,
        "engine.port",
        "engine.port and ssh.port would both listen on port 22",
    ),
    "SSH on the engine's default port": (
        GOOD.replace("  port: 8000\n", "") + "ssh:\n  port: 8000\n", 4, "engine.port", "on port 8000"
    ),
    "engine on the node exporter's port": (
        GOOD.replace("port: 8000", "port: 9100") + "monitoring:\n  node_exporter: true\n",
        9,
        "monitoring.node_exporter",
        "monitoring.node_exporter and engine.port would both listen on port 9100",
    ),
    "a cluster open to everyone": (
        "name: demo\nprovider:\n  firewall:\n    allow: [0.0.0.0/0]\nengine:\n  model: m\ncluster:\n  nodes: 2\n",
        None,
        None,
        "Jobs API runs any code sent to it: never to everyone",
    ),
    "SSH on a Ray port": (
        "name: demo\nssh:\n  port: 6379\nengine:\n  model: m\ncluster:\n  nodes: 2\n",
        6,
        "cluster.ports.gcs",
        "cluster.ports.gcs and ssh.port would both listen on port 6379",
    ),
}


@pytest.fixture
def upctl_spy(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A stand-in upctl that records every call: bad configs must never reach the provider."""
    log = tmp_path / "upctl-calls.log"
    spy = tmp_path / "upctl"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 0\n')
    spy.chmod(spy.stat().st_mode | stat.S_IXUSR)
    return log, {"ORCHESTRATOR_UPCTL": str(spy), "PATH": f"{tmp_path}:{os.environ['PATH']}"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_exits_2_with_location(case: str, tmp_path: Path, upctl_spy: tuple[Path, dict[str, str]]) -> None:
    text, line, field, words = CASES[case]
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    log, env = upctl_spy
    for command in (["validate", str(cfg)], ["deploy", str(cfg)], ["deploy", str(cfg), "--dry-run"]):
        proc = run_cli(*command, env=env)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        first = proc.stderr.splitlines()[0]
        assert first.startswith(f"error: {cfg}"), first
        if line is not None:
            assert f"{cfg}:{line}:" in first
        if field is not None:
            assert f" {field}: " in first
        assert words in proc.stderr
    assert not log.exists(), "a bad config must not call upctl"


def test_good_config_validates(tmp_path: Path) -> None:
    cfg = tmp_path / "good.yaml"
    cfg.write_text(GOOD)
    proc = run_cli("validate", str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout and "demo" in proc.stdout


def test_relative_paths_resolve_against_config_dir(tmp_path: Path) -> None:
    cfg = tmp_path / "sub" / "c.yaml"
    cfg.parent.mkdir()
    cfg.write_text(GOOD + "ssh:\n  private_key: keys/id\nmonitoring:\n  prometheus_config: prom/p.yml\n")
    loaded = load_config(cfg)
    assert loaded.ssh.private_key == str(tmp_path / "sub" / "keys" / "id")
    assert loaded.monitoring.prometheus_config == str(tmp_path / "sub" / "prom" / "p.yml")


def test_missing_config_file(tmp_path: Path) -> None:
    proc = run_cli("validate", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "not found" in proc.stderr


yaml_scalars = st.one_of(
    st.integers(), st.text(max_size=12), st.booleans(), st.none(), st.lists(st.integers(), max_size=2)
)
keys = st.sampled_from(
    [
        "name",
        "provider",
        "engine",
        "ssh",
        "gpu",
        "monitoring",
        "zone",
        "model",
        "port",
        "kind",
        "plan",
        "bogus",
    ]
)
documents = st.recursive(yaml_scalars, lambda inner: st.dictionaries(keys, inner, max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents)
def test_generated_invalid_configs_never_crash(doc: object, tmp_path: Path) -> None:
    """Property: any generated document either loads or raises ConfigError — never anything else."""
    import yaml

    cfg = tmp_path / "gen.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    try:
        load_config(cfg)
    except ConfigError as exc:
        assert exc.exit_code == 2
        assert str(cfg) in exc.message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str, tmp_path: Path) -> None:
    cfg = tmp_path / "t.yaml"
    cfg.write_text(text)
    try:
        load_config(cfg)
    except ConfigError as exc:
        assert exc.exit_code == 2


def test_bad_firewall_cidr(tmp_path: Path) -> None:
    cfg = tmp_path / "fw.yaml"
    cfg.write_text(GOOD.replace("  zone: fi-hel2", "  zone: fi-hel2\n  firewall:\n    allow: [not-a-cidr]"))
    proc = run_cli("validate", str(cfg))
    assert proc.returncode == 2 and "provider.firewall.allow" in proc.stderr and "CIDR" in proc.stderr


@pytest.mark.parametrize("section", ["pytorch", "tensorflow"])
def test_ml_venv_paths_must_be_plain(tmp_path: Path, section: str) -> None:
    cfg = tmp_path / "venv.yaml"
    cfg.write_text(GOOD + f"host:\n  {section}:\n    venv: 'v $(id)'\n")
    proc = run_cli("validate", str(cfg))
    assert proc.returncode == 2 and f"host.{section}.venv" in proc.stderr and "plain path" in proc.stderr


MALFORMED = ["a: b: c\n", "a:\n  - x\n y: 1\n", "k: [1, 2\n", 'k: "open\n', "a: 1\n---\nb: 2\n", "\tk: v\n",
             "k: @x\n", "? [a\n", "k: !!python/object:os.system x\n"]  # fmt: skip


@pytest.mark.parametrize("text", MALFORMED)
def test_a_refused_document_is_worded_as_the_pure_python_parser_words_it(text: str) -> None:
    """yamlpos parses with libyaml; a document it refuses gets PyYAML's own pure-Python error, line included."""
    import yaml

    from orchestrator.yamlpos import load_with_lines

    with pytest.raises(yaml.YAMLError) as pure:
        yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506 - the safe loader
    with pytest.raises(ConfigError) as ours:
        load_with_lines(text, "f.yaml")
    mark = getattr(pure.value, "problem_mark", None)
    problem = getattr(pure.value, "problem", None) or str(pure.value)
    assert ours.value.message.endswith(f"malformed YAML: {problem}"), (ours.value.message, problem)
    assert ours.value.line == (mark.line + 1 if mark else None)


def test_fast_parse_gives_the_same_data_and_lines_as_the_pure_python_parser() -> None:
    import yaml

    from orchestrator import yamlpos

    assert yamlpos._LOADERS[0] is not yaml.SafeLoader, "PyYAML without libyaml: nothing fast to compare"
    for path in sorted((REPO / "configs").glob("*.yaml")) + sorted((REPO / "orchestrator" / "playbooks").glob("*")):
        text = path.read_text()
        data, lines = yamlpos.load_with_lines(text, str(path))
        assert data == yaml.load(text, Loader=yaml.SafeLoader), path  # noqa: S506
        pure_lines: dict[yamlpos.Loc, int] = {}
        yamlpos._walk(yaml.compose(text, Loader=yaml.SafeLoader), (), pure_lines)
        assert lines == pure_lines, path


def test_a_cluster_may_not_fall_back_to_another_zone(tmp_path: Path) -> None:
    """The cluster's private network lives in provider.zone: a fallback elsewhere could never join it."""
    fallbacks = "  fallbacks:\n    - {zone: de-fra1}\n    - {plan: GPU-16}\n"
    body = GOOD.replace("  zone: fi-hel2\n", "  zone: fi-hel2\n" + fallbacks)
    path = tmp_path / "c.yaml"
    path.write_text(body.replace("  port: 8000\n", "") + "cluster:\n  kind: ray\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, check_files=False)
    assert "not the zone (de-fra1)" in err.value.message, err.value.message
    path.write_text(path.read_text().replace("    - {zone: de-fra1}\n", ""))  # a plan fallback is fine
    assert load_config(path, check_files=False).cluster is not None
