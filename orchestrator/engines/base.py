"""The engine interface shared by vLLM, Triton and TF Serving: pure plan builders, no I/O on the host."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from orchestrator.actions import HttpCheck, Remote, Upload, UploadFile
from orchestrator.config import DeploymentConfig
from orchestrator.monitoring import ScrapeTarget

StartAction = Remote | Upload | UploadFile


class Engine(Protocol):
    kind: str
    cfg: DeploymentConfig

    def __init__(self, cfg: DeploymentConfig) -> None: ...

    @property
    def method(self) -> str:
        """How the engine runs on the host: pip | docker | none."""
        ...

    def install_probe(self) -> Remote:
        """Exits 0 (printing a version) when the stack is already installed as configured."""
        ...

    def install(self) -> list[Remote]:
        """Commands that install the serving stack."""
        ...

    def start(self, secrets: dict[str, str]) -> Sequence[StartAction]:
        """Uploads and commands that (re)start the engine detached; the last command prints its pid or id.

        Uploads of local model files (UploadFile) read the local files named in the config when run.
        """
        ...

    def stop(self) -> Remote:
        """Stops the engine if it runs; exits 0 when nothing runs."""
        ...

    def running_probe(self) -> Remote:
        """Exits 0 while the engine process/container is alive."""
        ...

    def log_tail(self, lines: int = 80) -> Remote: ...

    def log_command(self, tail: int, since: str | None = None, follow: bool = False) -> str:
        """The shell command that prints the engine's last ``tail`` log lines (since ``since``: a duration such as
        10m, or a timestamp), and with ``follow`` keeps printing new ones; every value quoted.

        Raises ConfigError where the log cannot honour ``since``.
        """
        ...

    def readiness(self, ip: str, api_key: bool) -> list[HttpCheck]:
        """Checks that together prove the engine serves: a real request, not only an open port."""
        ...

    def endpoint(self, ip: str) -> str: ...

    def scrape_target(self, ip: str) -> ScrapeTarget: ...


@runtime_checkable
class Supervised(Protocol):
    """Optional capability: an engine that runs as a host process picks its supervisor (systemd or setsid/nohup)."""

    def supervisor_probe(self) -> Remote:
        """Prints "systemd" or "nohup" on its first line and the login $HOME on its second."""
        ...

    def use_supervisor(self, supervisor: str, home: str) -> None:
        """Called with the probe's answer before start()/stop() plans are built."""
        ...


@runtime_checkable
class MultiGpu(Protocol):
    """Optional capability: an engine that spreads one model over every GPU of the server (vLLM tensor parallel)."""

    def use_gpus(self, count: int) -> None:
        """Called with the server's GPU count before start() plans are built."""
        ...
