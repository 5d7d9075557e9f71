"""The engine interface shared by vLLM (and later Triton / TF Serving): pure plan builders, no I/O."""

from __future__ import annotations

from typing import Protocol

from orchestrator.actions import HttpCheck, Remote, Upload
from orchestrator.config import DeploymentConfig
from orchestrator.monitoring import ScrapeTarget


class Engine(Protocol):
    kind: str
    cfg: DeploymentConfig

    def __init__(self, cfg: DeploymentConfig) -> None: ...

    def install_probe(self) -> Remote:
        """Exits 0 (printing a version) when the stack is already installed as configured."""
        ...

    def install(self) -> list[Remote]:
        """Commands that install the serving stack."""
        ...

    def start(self, secrets: dict[str, str]) -> list[Remote | Upload]:
        """Uploads and commands that (re)start the engine detached; the last command prints its pid or id."""
        ...

    def stop(self) -> Remote:
        """Stops the engine if it runs; exits 0 when nothing runs."""
        ...

    def running_probe(self) -> Remote:
        """Exits 0 while the engine process/container is alive."""
        ...

    def log_tail(self, lines: int = 80) -> Remote: ...

    def readiness(self, ip: str, api_key: bool) -> list[HttpCheck]:
        """Checks that together prove the engine serves: a real request, not only an open port."""
        ...

    def endpoint(self, ip: str) -> str: ...

    def scrape_target(self, ip: str) -> ScrapeTarget: ...
