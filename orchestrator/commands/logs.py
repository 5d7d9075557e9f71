"""`orchestrator logs NAME`: the engine's log on the server, over SSH with the pinned host key.

Which log: `docker logs` for a container (Triton, TF Serving, vLLM's docker method), else the engine's log file
(the detached process writes it, and so does the systemd unit: StandardOutput=append:). The command is the
engine's own (Engine.log_command); `-f` streams the channel as it comes until Ctrl-C, which ends it with exit 0.
"""

from __future__ import annotations

from orchestrator.commands.target import load_target
from orchestrator.errors import ConfigError


def logs(name: str, *, tail: int, since: str | None, follow: bool, debug: bool) -> int:
    """Print (or follow) the engine's log; returns the exit code: the remote command's, 0 after Ctrl-C."""
    from orchestrator.commands.remote import INTERRUPTED, stream_command
    from orchestrator.console import guard
    from orchestrator.engines import engine_for

    with guard(debug):
        if tail < 0:
            raise ConfigError(f"--tail {tail}: give a number of lines >= 0")
        target = load_target(name)
        command = engine_for(target.cfg).log_command(tail, since, follow)
        if debug:
            print(f"remote: {command}", flush=True)
        rc = stream_command(target, command)
        return 0 if rc == INTERRUPTED and follow else rc
    return 1  # not reached: guard exits on every error
