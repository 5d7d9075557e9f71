"""Live executor: performs actions for real — local processes, the SSH session, local files, HTTP checks."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from orchestrator.actions import (
    Action,
    Connect,
    HomeProbe,
    HttpCheck,
    Local,
    Pause,
    ReadLocal,
    Remote,
    RemoveLocal,
    Result,
    Upload,
    UploadFile,
    WriteLocal,
)
from orchestrator.errors import OrchestratorError
from orchestrator.transports.base import Notify
from orchestrator.transports.local import run_local
from orchestrator.transports.shield import deferred_signals
from orchestrator.transports.ssh import SshSession


def write_atomic(path: Path, content: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LiveExecutor:
    dry_run = False

    def __init__(self, secrets: dict[str, str], notify: Notify | None = None) -> None:
        self.secrets = secrets
        self.notify = notify
        self.ssh = SshSession(on_retry=notify)
        self.pending_interrupt = False

    def execute(self, action: Action) -> Result:
        if self.pending_interrupt:
            # The interrupted cloud call has finished and its step has recorded the result: now stop.
            self.pending_interrupt = False
            raise KeyboardInterrupt
        if isinstance(action, Local):
            if not action.mutates:
                return run_local(action.argv, action.timeout)
            with deferred_signals() as received:
                result = run_local(action.argv, action.timeout, own_session=True)
            if received and self.notify:
                self.notify("interrupt received: letting the cloud call finish and recording it first")
            self.pending_interrupt = bool(received)
            return result
        if isinstance(action, Connect):
            return Result(stdout=self.ssh.connect(action))
        if isinstance(action, Remote):
            result = self.ssh.run(action.command, action.timeout)
            if isinstance(action, HomeProbe) and result.rc == 0:
                self.ssh.home = result.stdout.strip() or None
            return result
        if isinstance(action, Upload):
            self.ssh.put(action.dest, action.content, action.mode)
            return Result()
        if isinstance(action, UploadFile):
            self.ssh.put_file(action.src, action.dest, action.mode)
            return Result()
        if isinstance(action, ReadLocal):
            try:
                return Result(stdout=action.path.read_text())
            except FileNotFoundError:
                return Result(rc=1, stderr="not found")
        if isinstance(action, WriteLocal):
            try:
                write_atomic(action.path, action.content, action.mode)
            except OSError as exc:
                raise OrchestratorError(f"cannot write {action.path}: {exc.strerror}") from None
            return Result()
        if isinstance(action, RemoveLocal):
            action.path.unlink(missing_ok=True)
            return Result()
        if isinstance(action, Pause):
            time.sleep(action.seconds)
            return Result()
        if isinstance(action, HttpCheck):
            return self._http(action)
        raise TypeError(f"unknown action {action!r}")

    def _http(self, check: HttpCheck) -> Result:
        from orchestrator.health import run_check

        def alive() -> bool:
            assert check.liveness is not None
            return self.ssh.run(check.liveness.command, check.liveness.timeout).rc == 0

        def log_tail() -> str:
            if check.log_tail is None:
                return ""
            r = self.ssh.run(check.log_tail.command, check.log_tail.timeout)
            return r.stdout + r.stderr

        return run_check(
            check,
            self.secrets,
            alive=alive if check.liveness is not None else None,
            dead_log=log_tail if check.log_tail is not None else None,
            on_wait=self.notify,
        )

    def close(self) -> None:
        self.ssh.close()
