"""Configure it: `orchestrator schema` (a real JSON Schema validator checks configs/ against it), `orchestrator init`
(each engine's starter config validates), and shell completion (typer's, under the one program name)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import REPO, run_cli

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
ENGINES = ("vllm", "triton", "tfserving")
# Where each docker engine's starter config expects its model files (relative to the config), and an example.
MODEL_FILES = {
    "triton": ("model_repository", REPO / "examples" / "triton" / "model_repository"),
    "tfserving": ("saved_model", REPO / "examples" / "tfserving" / "half_plus_two"),
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    proc = run_cli("schema")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # the printed document is itself a valid JSON Schema of the draft it names
    return cls(schema)


def _errors(validator: jsonschema.protocols.Validator, doc: object) -> list[str]:
    return [e.message for e in validator.iter_errors(doc)]


def test_schema_names_its_draft_and_title(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "orchestrator deployment config"
    assert schema["required"] == ["name", "engine"]
    assert schema["additionalProperties"] is False
    forbidding = [name for name, d in schema["$defs"].items() if d.get("additionalProperties") is False]
    assert {"ProviderConfig", "SshConfig", "EngineConfig", "TritonConfig", "TfServingConfig"} <= set(forbidding)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_shipped_config_validates_against_the_schema(
    validator: jsonschema.protocols.Validator, config: Path
) -> None:
    assert _errors(validator, yaml.safe_load(config.read_text())) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["provider"].update(zones="fi-hel2"), "Additional properties are not allowed ('zones'"),
        (lambda d: d.update(colour="blue"), "Additional properties are not allowed ('colour'"),
        (lambda d: d["provider"].update(storage_gb="lots"), "'lots' is not of type 'integer'"),
        (lambda d: d["ssh"].update(port=70000), "70000 is greater than the maximum of 65535"),
        (lambda d: d.update(name="Bad_Name"), "'Bad_Name' does not match"),
        (lambda d: d["engine"]["health"].update(timeout="soon"), "'soon' is not valid under any of the given schemas"),
        (lambda d: d.pop("engine"), "'engine' is a required property"),
    ],
    ids=["unknown-nested-key", "unknown-top-key", "wrong-type", "out-of-range", "bad-name", "bad-duration", "missing"],
)
def test_schema_rejects_what_the_loader_rejects(
    validator: jsonschema.protocols.Validator, change: Any, expected: str, tmp_path: Path
) -> None:
    doc = yaml.safe_load((REPO / "configs" / "vllm-l40s.yaml").read_text())
    change(doc)
    errors = _errors(validator, doc)
    assert len(errors) == 1 and errors[0].startswith(expected), errors
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    proc = run_cli("validate", str(bad))  # the schema agrees with the loader
    assert proc.returncode == 2, proc.stdout + proc.stderr


def test_durations_are_numbers_or_duration_strings(validator: jsonschema.protocols.Validator) -> None:
    doc = yaml.safe_load((REPO / "configs" / "vllm-l40s.yaml").read_text())
    for good in ("30m", "1h30m", "90s", "500ms", 600, 12.5, "45"):
        doc["engine"]["health"]["timeout"] = good
        assert _errors(validator, doc) == [], good
    for bad in (-1, True, "30 minutes", "m30"):
        doc["engine"]["health"]["timeout"] = bad
        assert _errors(validator, doc) != [], bad


@pytest.mark.parametrize("engine", ENGINES)
def test_init_output_validates(
    engine: str, tmp_path: Path, validator: jsonschema.protocols.Validator
) -> None:
    out = tmp_path / f"{engine}.yaml"
    proc = run_cli("init", "--engine", engine, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert f"wrote {out}" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # only the config, no model files
    text = out.read_text()
    assert text.startswith("# yaml-language-server: $schema=orchestrator.schema.json\n")
    doc = yaml.safe_load(text)
    assert doc["engine"]["kind"] == engine
    assert (doc["provider"]["zone"], doc["provider"]["plan"]) == ("fi-hel2", "^GPU-8xCPU-64GB-1xL40S$")
    assert _errors(validator, doc) == []
    if engine in MODEL_FILES:
        where, example = MODEL_FILES[engine]
        missing = run_cli("validate", str(out))
        assert missing.returncode == 2, missing.stdout
        shutil.copytree(example, tmp_path / where)
    valid = run_cli("validate", str(out))
    assert valid.returncode == 0, valid.stderr
    assert f"OK — deployment my-{engine}, {engine} serving" in valid.stdout


def test_init_prints_to_stdout_by_default() -> None:
    proc = run_cli("init")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (REPO / "orchestrator" / "templates" / "vllm.yaml").read_text()
    doc = yaml.safe_load(proc.stdout)
    assert doc["engine"] == yaml.safe_load((REPO / "orchestrator" / "templates" / "vllm.yaml").read_text())["engine"]
    assert "# default" in proc.stdout  # commented: each key says its default


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    out = tmp_path / "mine.yaml"
    out.write_text("name: mine\n")
    proc = run_cli("init", "--output", str(out))
    assert proc.returncode == 2
    assert "already exists; nothing was written" in proc.stderr
    assert "--force" in proc.stderr
    assert out.read_text() == "name: mine\n"
    forced = run_cli("init", "--engine", "triton", "--output", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert yaml.safe_load(out.read_text())["engine"]["kind"] == "triton"


def test_init_refuses_an_unknown_engine(tmp_path: Path) -> None:
    proc = run_cli("init", "--engine", "torchserve", "--output", str(tmp_path / "x.yaml"))
    assert proc.returncode == 2
    assert "unknown engine 'torchserve'" in proc.stderr
    assert "vllm, triton, tfserving" in proc.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_show_completion_prints_a_bash_script() -> None:
    proc = run_cli("--show-completion", "bash")
    assert proc.returncode == 0, proc.stderr
    assert "_ORCHESTRATOR_COMPLETE=complete_bash" in proc.stdout
    assert "complete -o default -F _orchestrator_completion orchestrator" in proc.stdout


def test_completion_completes_commands_and_engines() -> None:
    env = {"_ORCHESTRATOR_COMPLETE": "complete_bash", "COMP_WORDS": "orchestrator in", "COMP_CWORD": "1"}
    proc = run_cli(env=env)
    assert (proc.returncode, proc.stdout.split()) == (0, ["init"]), proc.stderr
    env.update(COMP_WORDS="orchestrator init --engine t", COMP_CWORD="3")
    proc = run_cli(env=env)
    assert (proc.returncode, proc.stdout.split()) == (0, ["triton", "tfserving"]), proc.stderr


def test_help_lists_the_completion_options_and_new_commands() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: orchestrator [OPTIONS] COMMAND [ARGS]...")
    for text in ("--install-completion", "--show-completion", "schema ", "init "):
        assert text in proc.stdout, text


def test_schema_checks_each_engine_kind_by_its_own_model(validator: jsonschema.protocols.Validator) -> None:
    doc = yaml.safe_load((REPO / "configs" / "triton-l40s.yaml").read_text())
    doc["engine"]["http_port"] = "eighty"
    assert _errors(validator, doc) == ["'eighty' is not of type 'integer'"]
    doc["engine"]["http_port"] = 8000
    doc["engine"]["max_model_len"] = 4096  # a vLLM key: not allowed for Triton
    assert _errors(validator, doc) == ["Additional properties are not allowed ('max_model_len' was unexpected)"]
    vllm = yaml.safe_load((REPO / "configs" / "vllm-l40s.yaml").read_text())
    del vllm["engine"]["kind"]  # the loader's default engine
    assert _errors(validator, vllm) == []


def test_init_has_a_template_for_every_engine_the_config_accepts() -> None:
    from orchestrator.commands.init import ENGINES as INIT_ENGINES
    from orchestrator.commands.init import template_dir
    from orchestrator.config import ENGINE_KINDS

    assert INIT_ENGINES == ENGINE_KINDS
    assert sorted(p.stem for p in template_dir().glob("*.yaml")) == sorted(ENGINE_KINDS)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_commented_out_key_of_a_starter_config_is_a_valid_setting(engine: str) -> None:
    """The starter config's commented-out keys (replicas, provider.price_per_hour, ttl, fallbacks, ...), all
    uncommented at once, still make a config that validates: what it shows can be used as shown."""
    import re

    from orchestrator.config import DeploymentConfig

    text = (REPO / "orchestrator" / "templates" / f"{engine}.yaml").read_text()
    uncommented = re.sub(r"^(\s*)# ([a-z_]+: )", r"\1\2", text, flags=re.M)
    assert uncommented.count("\n") == text.count("\n") and "\nreplicas: 1" in uncommented
    cfg = DeploymentConfig.model_validate(yaml.safe_load(uncommented))
    assert (cfg.replicas, cfg.provider.price_per_hour, cfg.provider.ttl is not None) == (1, 1.92, True)
