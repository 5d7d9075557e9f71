"""Triton and TF Serving config: the engine union on kind, local model file checks, the shipped configs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.engine_config import TfServingConfig, TritonConfig
from orchestrator.errors import ConfigError
from orchestrator.model_files import pbtxt_top_level
from tests.conftest import REPO, run_cli

TRITON_REPO = REPO / "examples" / "triton" / "model_repository"
SAVED_MODEL = REPO / "examples" / "tfserving" / "half_plus_two"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def triton_cfg(tmp_path: Path, repo: str = "repo", extra: str = "") -> Path:
    return write(
        tmp_path / "t.yaml",
        f"name: trt\nssh:\n  private_key: /keys/id\nengine:\n  kind: triton\n  model_repository: {repo}\n{extra}",
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(TRITON_REPO, tmp_path / "repo")
    return tmp_path / "repo"


# ---------------------------------------------------------------- config


def test_triton_config_defaults_and_relative_repository(tmp_path: Path, repo: Path) -> None:
    cfg = load_config(triton_cfg(tmp_path))
    e = cfg.engine
    assert isinstance(e, TritonConfig)
    assert e.model_repository == str(repo)  # relative to the config file, not the cwd
    assert (e.image, e.http_port, e.grpc_port, e.metrics_port) == (
        "nvcr.io/nvidia/tritonserver:25.08-py3",
        8000,
        8001,
        8002,
    )
    assert e.health.timeout == 600 and e.models == [] and e.served == "all models in repo"
    assert e.api_key_env is None and e.hf_token_env is None  # no secrets are read for it


def test_tfserving_config_defaults(tmp_path: Path) -> None:
    shutil.copytree(SAVED_MODEL, tmp_path / "half_plus_two")
    cfg = load_config(
        write(tmp_path / "c.yaml", "name: tfs\nengine:\n  kind: tfserving\n  saved_model: half_plus_two\n")
    )
    e = cfg.engine
    assert isinstance(e, TfServingConfig)
    assert (e.image, e.rest_port, e.grpc_port, e.served) == (
        "tensorflow/serving:2.19.0-gpu",
        8501,
        8500,
        "half_plus_two",
    )
    assert e.example_input is None and e.example_body is None


def test_vllm_stays_the_default_kind(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "c.yaml", "name: v1\nengine:\n  model: Qwen/Qwen2.5-0.5B-Instruct\n"))
    assert cfg.engine.kind == "vllm"


BAD_CONFIGS = {
    "unknown kind": ("  kind: triton\n", "  kind: tgi\n", 5, "engine.kind", "expected one of: vllm, triton, tfserving"),
    "missing repository": ("  model_repository: repo\n", "", 4, "engine.model_repository", "missing"),
    "bad image": ("", "  image: 'Nvcr.io/Triton Server'\n", 7, "engine.image", "image reference"),
    "same ports": ("", "  grpc_port: 8000\n", 4, "engine", "ports must differ"),
    "bad model name": ("", "  models: ['../x']\n", 7, "engine.models", "not a model directory name"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_engine_config_names_file_line_field(case: str, tmp_path: Path, repo: Path) -> None:
    old, new, line, field, words = BAD_CONFIGS[case]
    path = triton_cfg(tmp_path)
    path.write_text(path.read_text().replace(old, new) if old else path.read_text() + new)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.message.startswith(f"{path}:{line}: {field}: "), err.value.message
    assert words in err.value.message


def broken(repo: Path, case: str) -> tuple[str, str]:
    """Break a copy of the example repository; return (field, words expected in the error)."""
    model = repo / "identity_fp32"
    if case == "no repository":
        shutil.rmtree(repo)
        return "model_repository", "model repository not found"
    if case == "empty repository":
        shutil.rmtree(model)
        return "model_repository", "no model directories"
    if case == "no config.pbtxt":
        (model / "config.pbtxt").unlink()
        return "model_repository", "has no config.pbtxt"
    if case == "name mismatch":
        write(model / "config.pbtxt", 'name: "other"\nbackend: "python"\n')
        return "model_repository", "says name: 'other', but its directory is 'identity_fp32'"
    if case == "only version 0":
        (model / "1").rename(model / "0")
        return "model_repository", "has no version directory"
    if case == "non-numeric version":
        (model / "1").rename(model / "v1")
        return "model_repository", "has no version directory"
    return "models", "model 'missing' is not in"


@pytest.mark.parametrize(
    "case",
    ["no repository", "empty repository", "no config.pbtxt", "name mismatch", "only version 0", "non-numeric version",
     "unknown model listed"],
)  # fmt: skip
def test_triton_repository_checked_before_anything(case: str, tmp_path: Path, repo: Path) -> None:
    field, words = broken(repo, case)
    extra = "  models: [identity_fp32, missing]\n" if case == "unknown model listed" else ""
    path = triton_cfg(tmp_path, extra=extra)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    line = 7 if field == "models" else 6
    assert err.value.message.startswith(f"{path}:{line}: engine.{field}: ") and words in err.value.message
    assert load_config(path, check_files=False).engine.kind == "triton"  # e.g. teardown needs no model files


def test_config_pbtxt_name_may_be_omitted_and_nested_names_ignored(tmp_path: Path, repo: Path) -> None:
    write(repo / "identity_fp32" / "config.pbtxt", 'backend: "python"\ninput [ { name: "INPUT0" } ]\n')
    assert load_config(triton_cfg(tmp_path)).engine.kind == "triton"
    assert pbtxt_top_level('input [{name: "x"}] # name: "c"\nname: "top"') == {"name": "top"}


@pytest.mark.parametrize(
    "layout, words",
    [
        ({}, "no numeric version directory"),
        ({"1/variables/variables.index": ""}, "version 1 has no saved_model.pb or saved_model.pbtxt"),
        ({"1/saved_model.pb": "", "2/readme.txt": ""}, "version 2 has no saved_model.pb"),
    ],
)
def test_saved_model_checked_before_anything(layout: dict[str, str], words: str, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    for rel, text in layout.items():
        write(tmp_path / "m" / rel, text)
    path = write(tmp_path / "c.yaml", "name: tfs\nengine:\n  kind: tfserving\n  saved_model: m\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.message.startswith(f"{path}:4: engine.saved_model: ") and words in err.value.message


def test_tfserving_example_input_must_be_a_predict_body(tmp_path: Path) -> None:
    shutil.copytree(SAVED_MODEL, tmp_path / "m")
    path = write(
        tmp_path / "c.yaml", "name: tfs\nengine:\n  kind: tfserving\n  saved_model: m\n  example_input: {x: [1]}\n"
    )
    with pytest.raises(ConfigError, match="engine.example_input: .*instances"):
        load_config(path)


def test_bad_model_files_exit_2_without_calling_upctl(tmp_path: Path, repo: Path) -> None:
    (repo / "identity_fp32" / "config.pbtxt").unlink()
    spy = write(tmp_path / "bin" / "upctl", f"#!/bin/sh\necho called >> {tmp_path / 'calls'}\n")
    spy.chmod(0o755)
    env = {"ORCHESTRATOR_UPCTL": str(spy)}
    for command in (["validate"], ["deploy"], ["deploy", "--dry-run"]):
        proc = run_cli(command[0], str(triton_cfg(tmp_path)), *command[1:], env=env)
        assert proc.returncode == 2, proc.stderr
        assert "engine.model_repository: model 'identity_fp32' has no config.pbtxt" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "calls").exists()


# ---------------------------------------------------------------- the shipped configs


@pytest.mark.parametrize(
    "config, order",
    [
        (
            "configs/triton-l40s.yaml",
            [
                "remote: docker image inspect --format '{{.Id}}' nvcr.io/nvidia/tritonserver:25.08-py3",
                "remote: docker pull nvcr.io/nvidia/tritonserver:25.08-py3",
                "upload: .orchestrator/triton-l40s/models.upload/identity_fp32/1/model.py <- ",
                "upload: .orchestrator/triton-l40s/models.upload/identity_fp32/config.pbtxt <- ",
                "upload: .orchestrator/triton-l40s/start.sh",
                "http: GET http://<server.ip>:8000/v2/health/ready expect triton-ready",
                "http: GET http://<server.ip>:8000/v2/models/identity_fp32/ready",
                "-> scrape job orchestrator-triton-l40s -> <server.ip>:8002/metrics",
            ],
        ),
        (
            "configs/tfserving-l40s.yaml",
            [
                "remote: docker pull tensorflow/serving:2.19.0-gpu",
                "upload: .orchestrator/tfserving-l40s/model.upload/1/saved_model.pbtxt <- ",
                "upload: .orchestrator/tfserving-l40s/monitoring.config",
                "http: GET http://<server.ip>:8501/v1/models/half_plus_two expect tfs-available half_plus_two",
                "http: POST http://<server.ip>:8501/v1/models/half_plus_two:predict expect tfs-predict",
                "-> scrape job orchestrator-tfserving-l40s -> <server.ip>:8501/monitoring/prometheus/metrics",
            ],
        ),
    ],
)
def test_shipped_configs_validate_and_dry_run_without_credentials(
    config: str, order: list[str], tmp_path: Path
) -> None:
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    check = run_cli("validate", config, env=env)
    assert check.returncode == 0 and ": OK — deployment" in check.stdout, check.stderr
    proc = run_cli("deploy", config, "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    positions = [proc.stdout.find(s) for s in order]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), list(zip(order, positions, strict=True))
    assert "upctl server create" in proc.stdout and not (tmp_path / "home" / ".orchestrator").exists()
