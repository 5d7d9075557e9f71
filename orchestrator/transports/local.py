"""Local transport: run a program on this machine (upctl, promtool) and capture its output."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from orchestrator.actions import Result
from orchestrator.errors import ProviderError


def run_local(argv: Sequence[str], timeout: float, *, own_session: bool = False) -> Result:
    """Run argv with the caller's environment (credentials stay in env, never in argv).

    ``own_session`` keeps a terminal's Ctrl-C from reaching the child (used for calls that create or delete).
    """
    env = dict(os.environ)
    env.setdefault("NO_COLOR", "1")
    try:
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
