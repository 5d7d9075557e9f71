"""User-facing output and the error boundary: `error:` / `hint:` lines, documented exit codes, masked secrets.

Every failure of a command leaves through `_exit()`: it prints `error:`/`hint:` on stderr, in JSON mode one
`{"ok": false, "error", "hint", "exit_code"}` object on stdout, and raises `typer.Exit` with that same code, so the
exit status a script sees and the `exit_code` it reads cannot differ. typer is not imported here: the fast read-only
commands (entry.py) run without it, and there the same exit is a SystemExit with that code.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn, TextIO

from orchestrator.errors import EXIT_CODES, ConfigError, OrchestratorError

_interrupt_reported = False
_json_mode = False


def interrupt_reported() -> bool:
    """Whether an interrupt was already explained to the user (the CLI's exit path checks this)."""
    return _interrupt_reported


def json_mode() -> bool:
    """Whether this command was run with --json (set by its first guard(as_json=...) or set_json_errors())."""
    return _json_mode


def set_json_errors(enabled: bool) -> None:
    """From now on, every guard's failure also prints the JSON error object (the command's --json)."""
    global _json_mode
    _json_mode = enabled


class Console:
    """All user-facing output; masks secret values as a last line of defence."""

    def __init__(self, secrets: dict[str, str] | None = None, verbose: bool = False) -> None:
        self.secrets = [s for s in (secrets or {}).values() if s]
        self.verbose = verbose
        # A --json command's document so far (steps, server...): a failure's JSON object carries it.
        self.report: dict[str, object] = {}
        # Told the failure's JSON object as well (the progress events' `summary`), when set.
        self.on_document: Callable[[dict[str, object]], None] | None = None

    def mask(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text

    def err(self, text: str) -> None:
        _write(self.mask(text), sys.stderr)

    def out(self, text: str) -> None:
        _write(self.mask(text), sys.stdout)


def _write(text: str, stream: TextIO) -> None:
    """One line out. When whoever reads it has gone (`| head`), the rest of the output is dropped and the command
    goes on to its end and its exit code: a deploy or teardown is not cut off halfway by a closed pipe."""
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # later lines, and the flush at exit, vanish
        os.close(devnull)


def _note_interrupt_reported() -> None:
    global _interrupt_reported
    _interrupt_reported = True


def _exit(console: Console, code: int, message: str, hint: str | None, details: str | None = None) -> NoReturn:
    """The one way a command fails: stderr lines, the JSON object (with --json), and the process exit code."""
    report_error(console, code, message, hint, details)
    typer = sys.modules.get("typer")
    if typer is not None:  # inside the typer app: its Exit, which cli.py turns into the process exit status
        raise typer.Exit(code)
    raise SystemExit(code)


def _is_typer_exit(exc: BaseException) -> bool:
    typer = sys.modules.get("typer")
    return typer is not None and isinstance(exc, typer.Exit)


def report_error(console: Console, code: int, message: str, hint: str | None, details: str | None = None) -> None:
    """Say that the command failed with `code`: only for a caller that then exits with that code (see _exit)."""
    doc = {"ok": False, **console.report, "error": message, "hint": hint, "exit_code": code}
    if _json_mode and console.on_document is not None:
        console.on_document(doc)  # the progress events' last one; the plain error lines follow it
    console.err(f"error: {message}")
    if details:
        tail = details.strip().splitlines()[-25:]
        console.err("\n".join("  | " + line for line in tail))
    if hint:
        lines = hint.splitlines()
        console.err("hint: " + lines[0])
        for line in lines[1:]:
            console.err("      " + line)
    if _json_mode:
        console.out(json.dumps(doc, indent=2))


def _traceback(console: Console) -> None:
    import traceback

    console.err(traceback.format_exc().rstrip("\n"))  # through the console: masked like every other line


def fail(console: Console, exc: OrchestratorError, debug: bool) -> NoReturn:
    if exc.exit_code == EXIT_CODES["interrupted"]:
        _note_interrupt_reported()
    if debug:
        _traceback(console)
    _exit(console, exc.exit_code, exc.message, exc.hint, exc.details)


@contextlib.contextmanager
def guard(debug: bool, console: Console | None = None, *, as_json: bool | None = None) -> Iterator[Console]:
    """Map every exception to the documented exit code; a traceback only with --debug.

    `as_json` switches JSON errors on (or off) for the rest of the command, so nested guards (session.py) need
    not be told again; left out, the command's setting holds.
    """
    if as_json is not None:
        set_json_errors(as_json)
    c = console or Console()
    try:
        yield c
    except OrchestratorError as exc:
        fail(c, exc, debug)
    except KeyboardInterrupt:
        _note_interrupt_reported()
        _exit(c, EXIT_CODES["interrupted"], "interrupted (no step was running)", None)
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: no traceback without --debug
        if _is_typer_exit(exc):
            raise
        if debug:
            _traceback(c)
        _exit(
            c,
            EXIT_CODES["error"],
            f"internal error: {type(exc).__name__}: {exc}",
            "rerun with --debug and report the traceback",
        )


def confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise ConfigError("this deletes servers: confirm with --yes when not interactive")
    import typer

    if not typer.confirm(question, err=True):
        _exit(Console(), EXIT_CODES["error"], "aborted; nothing was changed", None)
