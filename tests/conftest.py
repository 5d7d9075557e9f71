"""Shared fixtures: a clean environment for every test (no real credentials, no real ~/.orchestrator)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    for var in (
        "UPCLOUD_TOKEN",
        "UPCLOUD_USERNAME",
        "UPCLOUD_PASSWORD",
        "HF_TOKEN",
        "VLLM_API_KEY",
        "ORCHESTRATOR_UPCTL",
        "SSH_AUTH_SOCK",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path_factory.mktemp("orch-home")))
    yield


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess (what a user runs)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report the fault-injection totals: scenarios run and untracked (orphaned) servers found — must be 0."""
    from tests.faultlog import SCENARIOS

    if SCENARIOS:
        orphans = sum(n for _, n in SCENARIOS)
        terminalreporter.write_line(
            f"fault injection: {len(SCENARIOS)} scenarios run, {orphans} untracked servers found"
        )
