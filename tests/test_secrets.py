"""Secrets: environment first, then a 0600 secrets file; a generated engine API key when none is given."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from orchestrator.config import DeploymentConfig
from orchestrator.errors import ConfigError
from orchestrator.secrets import API_KEY, HF_TOKEN, generated_key_path, load_secrets


def cfg(**extra: object) -> DeploymentConfig:
    return DeploymentConfig.model_validate({"name": "sec", "engine": {"model": "m"}, **extra})


def test_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "from-env")
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    found, note = load_secrets(cfg(), create_api_key=True)
    assert found == {API_KEY: "from-env", HF_TOKEN: "hf_env"} and note is None
    assert not generated_key_path("sec").exists()


def test_secrets_file_must_be_private(tmp_path: Path) -> None:
    f = tmp_path / "secrets.env"
    f.write_text("# comment\nexport HF_TOKEN='hf_file'\nVLLM_API_KEY=file-key\n")
    f.chmod(0o644)
    with pytest.raises(ConfigError) as err:
        load_secrets(cfg(secrets_file=str(f)), create_api_key=True)
    assert "chmod 600" in (err.value.hint or "")
    f.chmod(0o600)
    found, _ = load_secrets(cfg(secrets_file=str(f)), create_api_key=True)
    assert found == {API_KEY: "file-key", HF_TOKEN: "hf_file"}


def test_api_key_generated_once_and_kept_private() -> None:
    found, note = load_secrets(cfg(), create_api_key=True)
    path = generated_key_path("sec")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert found[API_KEY] == path.read_text().strip() and len(found[API_KEY]) >= 40
    assert note is not None and str(path) in note and found[API_KEY] not in note
    again, _ = load_secrets(cfg(), create_api_key=True)
    assert again[API_KEY] == found[API_KEY]


def test_dry_run_generates_nothing() -> None:
    found, note = load_secrets(cfg(), create_api_key=False)
    assert API_KEY not in found and note is None and not generated_key_path("sec").exists()


def test_api_key_can_be_disabled() -> None:
    found, _ = load_secrets(cfg(engine={"model": "m", "api_key_env": None}), create_api_key=True)
    assert API_KEY not in found
