"""Local transport: run a program on this machine (upctl, promtool) and capture its output; with ``on_stderr``, its
stderr lines also reach the caller as they come (upctl's progress log: `> Creating server ...`, `> Waiting for
server ... to be in started state`, one line per message when stderr is not a terminal)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
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
        return _run(list(argv), timeout, env, own_session, on_stderr)
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


def _run(
    argv: list[str], timeout: float, env: dict[str, str], own_session: bool, on_stderr: Callable[[str], None] | None
) -> Result:
    """subprocess.run's capture and timeout (the child killed, TimeoutExpired raised), stderr read line by line.

    Both pipes and the exit are waited for in this thread, by one selector: no reader or timer thread per call
    (a fleet's firewall step makes 16 calls per server), and no polling for the exit (subprocess.run's wait with a
    timeout sleeps in steps)."""
    import selectors
    import time

    from orchestrator.transports.lines import LineSplitter

    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=own_session,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    lines = LineSplitter("stderr", (lambda _stream, line: on_stderr(line)) if on_stderr is not None else None)
    deadline = time.monotonic() + timeout
    exited = _exit_fd(proc.pid)
    try:
        with selectors.DefaultSelector() as waiting:
            waiting.register(proc.stdout, selectors.EVENT_READ)
            waiting.register(proc.stderr, selectors.EVENT_READ)
            if exited is not None:
                waiting.register(exited, selectors.EVENT_READ)
            while waiting.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired(argv, timeout)
                for key, _ in waiting.select(left):
                    data = b"" if key.fileobj is exited else os.read(key.fd, 65536)
                    if not data:
                        waiting.unregister(key.fileobj)
                    elif key.fileobj is proc.stdout:
                        out += data
                    else:
                        err += data
                        lines.feed(data)
        lines.flush()
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise subprocess.TimeoutExpired(argv, timeout) from None
    except BaseException:  # the deadline, the callback or the read failed: the child goes too
        if own_session:  # its whole session: no child of it keeps the pipes open
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
        if exited is not None:
            os.close(exited)
    return Result(rc=proc.returncode, stdout=_text(out), stderr=_text(err))


def _exit_fd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux >= 5.3: a pidfd), so the exit is one more
    thing the selector waits for; None elsewhere (or where a sandbox refuses it): then Popen.wait, which polls."""
    try:
        return os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    except OSError:
        return None


def _text(raw: bytes | bytearray) -> str:
    """As ``text=True`` reads it, but UTF-8 whatever the locale (upctl, a Go program, writes UTF-8): universal
    newlines, an undecodable byte replaced rather than failing the call."""
    return raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
