"""Cross-process locks on local lock files (flock), for LockLocal/UnlockLocal actions.

flock belongs to the open file, so a lock dies with its process: no stale locks after a crash or kill -9.
Within one executor a lock is re-entrant (a retried step taking it again does not wait for itself).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import IO

from orchestrator.errors import OrchestratorError


class FileLocks:
    def __init__(self) -> None:
        self._held: dict[Path, tuple[IO[str], int]] = {}

    def acquire(self, path: Path, wait: float, purpose: str) -> None:
        key = Path(os.path.abspath(path))
        if key in self._held:
            fh, depth = self._held[key]
            self._held[key] = (fh, depth + 1)
            return
        try:
            key.parent.mkdir(parents=True, exist_ok=True)
            fh = open(key, "a+")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise OrchestratorError(
                f"cannot open lock file {key}: {exc.strerror}",
                f"the directory {key.parent} must be writable to edit files in it",
            ) from None
        deadline = time.monotonic() + wait
        delay = 0.02
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    fh.close()
                    raise OrchestratorError(
                        f"{key} is still locked after {wait:.0f}s ({purpose}): held by {holder}",
                        "wait for that orchestrator run to finish, then retry",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on {socket.gethostname()}: {purpose}\n")
            fh.flush()
        self._held[key] = (fh, 1)

    def release(self, path: Path) -> None:
        key = Path(os.path.abspath(path))
        entry = self._held.get(key)
        if entry is None:
            return
        fh, depth = entry
        if depth > 1:
            self._held[key] = (fh, depth - 1)
            return
        del self._held[key]
        _unlock(fh)

    def release_all(self) -> None:
        held, self._held = self._held, {}
        for fh, _depth in held.values():
            _unlock(fh)


def _unlock(fh: IO[str]) -> None:
    with contextlib.suppress(OSError):
        fh.seek(0)
        fh.truncate()
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    fh.close()
