"""Console entry point: the interrupt policy is in place before any heavy import happens."""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _quiet_exit(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("error: interrupted while starting; nothing was changed\n")
    raise SystemExit(130)


def main() -> None:
    # Until the CLI is loaded, Ctrl-C / SIGTERM just stop (no traceback from half-done imports).
    signal.signal(signal.SIGINT, _quiet_exit)
    signal.signal(signal.SIGTERM, _quiet_exit)
    if sys.argv[1:] == ["--version"]:  # answered before typer loads (the option is also in --help)
        from orchestrator import installed_version

        print(f"orchestrator {installed_version()}")
        return
    from orchestrator.cli import main as cli_main

    cli_main()
