"""User-facing output and the error boundary: `error:` / `hint:` lines, documented exit codes, masked secrets."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import NoReturn

import typer

from orchestrator.errors import ConfigError, OrchestratorError

_interrupt_reported = False


def interrupt_reported() -> bool:
    """Whether an interrupt was already explained to the user (the CLI's exit path checks this)."""
    return _interrupt_reported


class Console:
    """All user-facing output; masks secret values as a last line of defence."""

    def __init__(self, secrets: dict[str, str] | None = None, verbose: bool = False) -> None:
        self.secrets = [s for s in (secrets or {}).values() if s]
        self.verbose = verbose

    def mask(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text

    def err(self, text: str) -> None:
        print(self.mask(text), file=sys.stderr, flush=True)

    def out(self, text: str) -> None:
        print(self.mask(text), flush=True)


def _note_interrupt_reported() -> None:
    global _interrupt_reported
    _interrupt_reported = True


def fail(console: Console, exc: OrchestratorError, debug: bool) -> NoReturn:
    if exc.exit_code == 130:
        _note_interrupt_reported()
    console.err(f"error: {exc.message}")
    if exc.details:
        tail = exc.details.strip().splitlines()[-25:]
        console.err("\n".join("  | " + line for line in tail))
    if exc.hint:
        lines = exc.hint.splitlines()
        console.err("hint: " + lines[0])
        for line in lines[1:]:
            console.err("      " + line)
    if debug:
        import traceback

        traceback.print_exc()
    raise typer.Exit(exc.exit_code)


@contextlib.contextmanager
def guard(debug: bool, console: Console | None = None) -> Iterator[Console]:
    """Map every exception to the documented exit code; a traceback only with --debug."""
    c = console or Console()
    try:
        yield c
    except OrchestratorError as exc:
        fail(c, exc, debug)
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        _note_interrupt_reported()
        c.err("error: interrupted (no step was running)")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: no traceback without --debug
        c.err(f"error: internal error: {type(exc).__name__}: {exc}")
        c.err("hint: rerun with --debug and report the traceback")
        if debug:
            import traceback

            traceback.print_exc()
        raise typer.Exit(1) from None


def confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise ConfigError("this deletes servers: confirm with --yes when not interactive")
    if not typer.confirm(question, err=True):
        Console().err("aborted; nothing was changed")
        raise typer.Exit(1)
