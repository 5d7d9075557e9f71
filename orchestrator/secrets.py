"""Secrets for a run: from the environment, a 0600 secrets file, or a generated engine API key kept in a 0600 file.

Values live only in memory, in the 0600 files named here, and in the 0600 env file on the host; never in
argv, output, logs, plans or state.
"""

from __future__ import annotations

import os
import secrets as pysecrets
import stat
from pathlib import Path

from orchestrator.config import DeploymentConfig
from orchestrator.errors import ConfigError
from orchestrator.state import ensure_home, orchestrator_home

API_KEY = "engine_api_key"  # names the runner's secret store uses
HF_TOKEN = "hf_token"


def read_secrets_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (dotenv style, # comments); the file must not be readable by others."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read secrets file {path}: {exc.strerror}", field="secrets_file") from None
    if mode & 0o077:
        raise ConfigError(
            f"secrets file {path} is readable by others (mode {mode:04o})", f"chmod 600 {path}", field="secrets_file"
        )
    values: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise ConfigError("expected KEY=VALUE", file=str(path), line=n)
        values[key.strip()] = value.strip().strip("'\"")
    return values


def generated_key_path(name: str) -> Path:
    return orchestrator_home() / "secrets" / f"{name}.api_key"


def _generated_key(name: str, create: bool) -> str | None:
    path = generated_key_path(name)
    if path.is_file():
        return path.read_text().strip() or None
    if not create:
        return None
    key = pysecrets.token_urlsafe(32)
    ensure_home()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def load_secrets(cfg: DeploymentConfig, *, create_api_key: bool) -> tuple[dict[str, str], str | None]:
    """Return (secrets by name, a note for the user or None).

    The engine API is protected by default: with no key in the environment or the secrets file, a key is
    generated once per deployment and kept in $ORCHESTRATOR_HOME/secrets/NAME.api_key (0600).
    """
    from_file = read_secrets_file(Path(cfg.secrets_file).expanduser()) if cfg.secrets_file else {}
    api_env = getattr(cfg.engine, "api_key_env", None)
    hf_env = getattr(cfg.engine, "hf_token_env", None)
    found: dict[str, str] = {}
    note = None
    for name, env in ((API_KEY, api_env), (HF_TOKEN, hf_env)):
        if env and (os.environ.get(env) or from_file.get(env)):
            found[name] = os.environ.get(env) or from_file[env]
    if api_env and API_KEY not in found:
        key = _generated_key(cfg.name, create_api_key)
        if key:
            found[API_KEY] = key
            note = (
                f"engine API key: ${api_env} is not set, so the key in {generated_key_path(cfg.name)} is used "
                "(clients send it as 'Authorization: Bearer <key>')"
            )
    return found, note
