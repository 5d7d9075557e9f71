"""Local transport: run a program on this machine (upctl, promtool) and capture its output; with ``on_stderr``, its
stderr lines also reach the caller as they come (upctl's progress log: `> Creating server ...`, `> Waiting for
server ... to be in started state`, one line per message when stderr is not a terminal)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence

from orchestrator.actions import Result
from orchestrator.errors import ProviderError


def run_local(
    argv: Sequence[str],
    timeout: float,
    *,
    own_session: bool = False,
    on_stderr: Callable[[str], None] | None = None,
) -> Result:
    """Run argv with the caller's environment (credentials stay in env, never in argv).

    ``own_session`` keeps a terminal's Ctrl-C from reaching the child (used for calls that create or delete).
    ``on_stderr`` gets each stderr line (without its line end) as the program writes it; the Result holds it all.
    """
    env = dict(os.environ)
    env.setdefault("NO_COLOR", "1")
    try:
        if on_stderr is not None:
            return _streamed(list(argv), timeout, env, own_session, on_stderr)
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=own_session,
        )
    except FileNotFoundError:
        raise ProviderError(
            f"{argv[0]}: command not found",
            "install it and put it on PATH (for upctl you can also set ORCHESTRATOR_UPCTL=/path/to/upctl)",
            argv=argv,
        ) from None
    except subprocess.TimeoutExpired:
        raise ProviderError(
            f"{argv[0]} did not finish within {timeout:.0f}s",
            "retry; check your network",
            argv=argv,
            transient=True,
        ) from None
    return Result(rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)


def _streamed(
    argv: list[str], timeout: float, env: dict[str, str], own_session: bool, on_stderr: Callable[[str], None]
) -> Result:
    """subprocess.run's capture and timeout (the child killed, TimeoutExpired raised), stderr read line by line."""
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=own_session,
    )
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else ""), daemon=True)
    reader.start()
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        if own_session:  # its whole session: no child of it keeps the pipes open
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    err: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            err.append(line)
            text = line.rstrip("\r\n").rstrip()
            if text:
                on_stderr(text)
        proc.wait()
        reader.join()
    finally:
        timer.cancel()
        if proc.poll() is None:  # the callback or the read failed: the child goes too
            proc.kill()
            proc.wait()
    if expired.is_set():
        raise subprocess.TimeoutExpired(argv, timeout)
    return Result(rc=proc.returncode, stdout="".join(out), stderr="".join(err))
