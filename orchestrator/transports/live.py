"""Live executor: performs actions for real — local processes, the SSH session, local files, HTTP checks."""

from __future__ import annotations

import time
from functools import partial

from orchestrator.actions import (
    Action,
    Connect,
    HomeProbe,
    HttpCheck,
    Local,
    LockLocal,
    Pause,
    ReadLocal,
    Remote,
    RemoveLocal,
    Result,
    UnlockLocal,
    Upload,
    UploadFile,
    WriteLocal,
)
from orchestrator.atomic import write_atomic
from orchestrator.errors import OrchestratorError
from orchestrator.health import OnWait, Wait
from orchestrator.transports.base import Feed, Notify
from orchestrator.transports.filelock import FileLocks
from orchestrator.transports.local import run_local
from orchestrator.transports.shield import deferred_signals
from orchestrator.transports.ssh import SshSession


class LiveExecutor:
    dry_run = False

    def __init__(self, secrets: dict[str, str], notify: Notify | None = None, feed: Feed | None = None) -> None:
        """``feed`` receives remote output lines as they arrive and each failed health probe (the reporter)."""
        self.secrets = secrets
        self.notify = notify
        self.feed = feed
        self.ssh = SshSession(on_retry=notify)
        self.pending_interrupt = False
        self.locks = FileLocks()

    def execute(self, action: Action) -> Result:
        if self.pending_interrupt:
            # The interrupted cloud call has finished and its step has recorded the result: now stop.
            self.pending_interrupt = False
            raise KeyboardInterrupt
        if isinstance(action, Local):
            if not action.mutates:
                return run_local(action.argv, action.timeout)
            # A create, stop or delete may wait minutes (`--wait`): its progress log reaches the reporter as it comes.
            on_stderr = partial(self.feed.output, "stderr") if self.feed is not None else None
            with deferred_signals() as received:
                result = run_local(action.argv, action.timeout, own_session=True, on_stderr=on_stderr)
            if received and self.notify:
                self.notify("interrupt received: letting the cloud call finish and recording it first")
            self.pending_interrupt = bool(received)
            return result
        if isinstance(action, Connect):
            return Result(stdout=self.ssh.connect(action))
        if isinstance(action, Remote):
            if self.feed is None:
                result = self.ssh.run(action.command, action.timeout)
            else:  # its output reaches the reporter line by line while it runs
                result = self.ssh.run(action.command, action.timeout, self.feed.output)
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
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise OrchestratorError(f"cannot read {action.path}: {why}") from None
        if isinstance(action, WriteLocal):
            try:
                write_atomic(action.path, action.content, action.mode, keep_existing=action.keep_existing)
            except OSError as exc:
                raise OrchestratorError(f"cannot write {action.path}: {exc.strerror}") from None
            return Result()
        if isinstance(action, RemoveLocal):
            try:
                action.path.unlink(missing_ok=True)
            except OSError as exc:
                raise OrchestratorError(f"cannot remove {action.path}: {exc.strerror}") from None
            return Result()
        if isinstance(action, LockLocal):
            self.locks.acquire(action.path, action.wait, action.purpose)
            return Result()
        if isinstance(action, UnlockLocal):
            self.locks.release(action.path)
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
            on_wait=self._on_wait(),
        )

    def _on_wait(self) -> OnWait | None:
        if self.feed is not None:
            return self.feed.waiting
        if self.notify is None:
            return None
        from orchestrator.progress import WaitThrottle

        throttle, notify = WaitThrottle(), self.notify

        def note(wait: Wait) -> None:
            if throttle.due(wait):
                notify(wait.text())

        return note

    def close(self) -> None:
        self.locks.release_all()
        self.ssh.close()
