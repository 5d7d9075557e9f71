"""The project's error types: every failure a user can see, with a message, a hint and an exit code.

Library errors (paramiko, httpx, subprocess, pydantic, yaml) are mapped into these once, at the boundary
where they happen (transports, provider, config loader). The CLI prints ``error:`` / ``hint:`` and exits
with ``exit_code``; a traceback only with ``--debug``.

    OrchestratorError                      exit 1  (unexpected / generic)
    ├── ConfigError                        exit 2  bad usage, config or playbook (file, line, field)
    ├── ProviderError                      exit 3  upctl failed, or the cloud refused
    │   ├── CredentialsError               exit 4  upctl exit 102/103
    │   └── CapacityError                  exit 3  no GPU capacity for the plan/zone
    ├── SSHError                           exit 5  cannot connect / authenticate / transport broke
    │   ├── HostKeyMismatch                exit 5  pinned host key changed
    │   └── ConnectionLost                 exit 5  the connection broke mid-step (reconnected, step re-run)
    ├── CommandFailed                      (mapped by the runner into the step's category below)
    ├── GpuVerificationError               exit 6  nvidia-smi missing/failing, wrong GPU count/model
    ├── HostPrepError                      exit 7  installing the serving stack failed
    ├── EngineError                        exit 8  engine did not start or never became healthy
    ├── MonitoringError                    exit 9  scrape config could not be written / promtool rejected it
    ├── TeardownIncomplete                 exit 10 something is still there after teardown
    ├── StateError                         exit 11 state file corrupt/foreign/unwritable, deployment unknown
    └── Interrupted                        exit 130 Ctrl-C / SIGTERM
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "error": 1,
    "config": 2,
    "provider": 3,
    "credentials": 4,
    "ssh": 5,
    "gpu": 6,
    "host-prep": 7,
    "engine": 8,
    "monitoring": 9,
    "teardown-incomplete": 10,
    "state": 11,
    "interrupted": 130,
}


class OrchestratorError(Exception):
    """Base error: a one-line message for the user and an optional hint saying what to do."""

    exit_code = EXIT_CODES["error"]

    def __init__(self, message: str, hint: str | None = None, *, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details  # e.g. a log tail, printed below the message

    def __str__(self) -> str:
        return self.message


class ConfigError(OrchestratorError):
    exit_code = EXIT_CODES["config"]

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = file or ""
        if file and line:
            where = f"{file}:{line}"
        prefix = f"{where}: " if where else ""
        fld = f"{field}: " if field else ""
        super().__init__(f"{prefix}{fld}{message}", hint)
        self.file, self.line, self.field = file, line, field


class ProviderError(OrchestratorError):
    exit_code = EXIT_CODES["provider"]

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
        transient: bool = False,
        details: str | None = None,
    ) -> None:
        super().__init__(message, hint, details=details)
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.transient = transient


class CredentialsError(ProviderError):
    exit_code = EXIT_CODES["credentials"]


class CapacityError(ProviderError):
    pass


class SSHError(OrchestratorError):
    exit_code = EXIT_CODES["ssh"]

    def __init__(
        self, message: str, hint: str | None = None, *, transient: bool = False, details: str | None = None
    ) -> None:
        super().__init__(message, hint, details=details)
        self.transient = transient


class HostKeyMismatch(SSHError):
    pass


class ConnectionLost(SSHError):
    """An established SSH connection broke (reset, sshd gone): the step is re-run after a reconnect."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, transient=True)


class CommandFailed(OrchestratorError):
    """A remote or local command exited non-zero. The runner maps it into the failing step's category."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = (stderr.strip() or stdout.strip()).splitlines()[-1:] or [""]
        super().__init__(f"command exited {returncode}: {tail[0]}".rstrip(": "))


class GpuVerificationError(OrchestratorError):
    exit_code = EXIT_CODES["gpu"]


class HostPrepError(OrchestratorError):
    exit_code = EXIT_CODES["host-prep"]


class EngineError(OrchestratorError):
    exit_code = EXIT_CODES["engine"]


class MonitoringError(OrchestratorError):
    exit_code = EXIT_CODES["monitoring"]


class TeardownIncomplete(OrchestratorError):
    exit_code = EXIT_CODES["teardown-incomplete"]


class StateError(OrchestratorError):
    exit_code = EXIT_CODES["state"]


class Interrupted(OrchestratorError):
    exit_code = EXIT_CODES["interrupted"]
