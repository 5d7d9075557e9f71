"""Playbooks: YAML step lists (orchestrator/playbooks/*.yaml, shipped as package data) with per-step timeout and
retries, validated with file:line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.durations import Duration
from orchestrator.errors import ConfigError
from orchestrator.yamlpos import load_with_lines, nearest_line

StepKind = Literal[
    "provision",
    "firewall-access",
    "connect",
    "server-running",
    "firewall",
    "prepare-host",
    "auto-stop",
    "verify-gpu",
    "ml-stack",
    "install-stack",
    "start-engine",
    "health",
    "monitoring",
    "stop-engine",
    "unmonitor",
    "destroy-server",
    "forget",
    "private-network",
    "ray-cluster",
    "ray-serve",
    "ray-metrics",
    "ray-leave",
    "ray-down",
    "delete-network",
]


class PlaybookStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: StepKind
    timeout: Duration | None = None
    retries: int = Field(default=0, ge=0, le=10)
    # A failure is recorded and the playbook goes on; the run then ends with TeardownIncomplete (exit 10)
    # naming what remains. For local clean-up that must never keep a server billing (teardown.yaml).
    continue_on_error: bool = False


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    steps: list[PlaybookStep] = Field(min_length=1)


def playbook_dir() -> Path:
    """$ORCHESTRATOR_PLAYBOOKS when set, else the playbooks installed with the package (wheel or checkout)."""
    env = os.environ.get("ORCHESTRATOR_PLAYBOOKS")
    if env:
        return Path(env).expanduser()
    from orchestrator import package_path

    return package_path("playbooks")


def load_playbook(name_or_path: str) -> Playbook:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = playbook_dir() / f"{name_or_path}.yaml"
    try:
        text = path.read_text()
    except OSError:
        raise ConfigError(
            f"playbook not found: {path}",
            "set ORCHESTRATOR_PLAYBOOKS to the playbooks folder",
            file=str(path),
        ) from None
    data, lines = load_with_lines(text, str(path))
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        msg = f"unknown key {loc[-1]!r}" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(
            msg,
            "see playbooks/README in README.md",
            file=str(path),
            line=nearest_line(lines, loc),
            field=".".join(map(str, loc)),
        ) from None
