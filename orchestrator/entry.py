"""Console entry point: the interrupt policy is in place before any heavy import happens.

The usual `status` invocations (`status [NAME] [--local] [--json] [--debug] [--live]`), `ssh [--debug] NAME
[-- CMD...]`, `logs NAME [-f] [--tail N] [--since X] [--debug]`, `deploy|redeploy CONFIG [--dry-run] [--json]
[--debug]` with the command's own flags, `teardown NAME|CONFIG --dry-run|--yes ...` and `validate CONFIG [--json]
[--debug]` are answered without typer: typer builds a pydantic TypeAdapter for every parameter of the command it
runs, which alone costs more than the 100 ms a read-only command may take to start (bench/cli_startup.py).
Anything else, `--help`, an unknown option, a teardown that may prompt or `teardown --orphans` included, goes to
the typer app in cli.py, which declares every command and its options; tests/test_state_doc.py and
tests/test_fast_dry_run.py check that both accept the same options, reach the same function with the same values,
and (the dry runs and validate) print the same bytes and exit with the same code.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType, ModuleType

# `status`'s flags as cli.py declares them (the option name, and the keyword it sets); --orphans asks the cloud
# (not a fast path), so it goes through typer like every other case.
STATUS_FLAGS = {"--local": "local", "--json": "as_json", "--debug": "debug", "--live": "live"}


# `logs`'s options as cli.py declares them: flags, and the options that take the next argument as their value.
LOGS_FLAGS = {"--follow": "follow", "-f": "follow", "--debug": "debug"}
LOGS_VALUES = {"--tail": "tail", "-n": "tail", "--since": "since"}
LOGS_TAIL = 100  # cli.py's default for --tail

# The config commands' flags as cli.py declares them (the option name, and the keyword it sets). deploy, redeploy
# and validate always take this path; teardown with --dry-run or --yes (without, it may ask for confirmation,
# and typer's prompt and its Abort are handled in cli.py), never with --orphans/--include-foreign. Each takes one
# CONFIG (teardown: a NAME or a config).
CONFIG_FLAGS = {"--json": "as_json", "--debug": "debug"}
DRY_RUN_FLAGS = CONFIG_FLAGS | {"--dry-run": "dry_run"}
CONFIG_COMMANDS: dict[str, tuple[str, dict[str, str]]] = {  # command: (its positional's keyword, its flags)
    "deploy": ("config", DRY_RUN_FLAGS | {"--teardown-on-failure": "teardown_on_failure"}),
    "redeploy": ("config", DRY_RUN_FLAGS | {"--recreate": "recreate"}),
    "teardown": ("target", DRY_RUN_FLAGS | {"--yes": "yes", "-y": "yes"}),
    "validate": ("config", CONFIG_FLAGS),
}
CONFIG_DEFAULTS: dict[str, dict[str, object]] = {"teardown": {"orphans": False, "include_foreign": False}}


# pydantic's plugin loader, and the PYDANTIC_DISABLE_PLUGINS values with which its get_plugins() loads nothing.
PLUGIN_LOADER = "pydantic.plugin._loader"
PLUGINS_OFF = ("__all__", "1", "true")


def _no_plugins_loader() -> ModuleType:
    """A stand-in for pydantic's plugin loader while plugins are off: importing the real one imports
    importlib.metadata for its entry-point scan (email, zipfile, csv among its imports: ~14 ms of every config
    command), only for get_plugins() to return no plugins. The stand-in's get_plugins() returns none too; any other
    public name it is asked for loads the real module in its place."""
    module = ModuleType(PLUGIN_LOADER)

    def real(name: str) -> object:
        if name.startswith("__"):  # the import system asks for __path__ and such: a plain module has none
            raise AttributeError(name)
        if sys.modules.get(PLUGIN_LOADER) is module:
            del sys.modules[PLUGIN_LOADER]
        return getattr(importlib.import_module(PLUGIN_LOADER), name)

    module.get_plugins = tuple  # type: ignore[attr-defined]
    module.__getattr__ = real  # type: ignore[method-assign]
    return module


def _quiet_exit(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("error: interrupted while starting; nothing was changed\n")
    raise SystemExit(130)


def fast_status_args(args: list[str]) -> dict[str, object] | None:
    """The keyword arguments of commands.status.status for ``args`` (after `status`), or None: leave it to typer."""
    kwargs: dict[str, object] = {"name": None, "orphans": False, "local": False, "as_json": False, "debug": False}
    for arg in args:
        if arg in STATUS_FLAGS:
            kwargs[STATUS_FLAGS[arg]] = True
        elif arg.startswith("-") or kwargs["name"] is not None or not arg:
            return None
        else:
            kwargs["name"] = arg
    kwargs.pop("live", None)  # accepted for compatibility: live checks are the default
    return kwargs


def fast_ssh_args(args: list[str]) -> tuple[str, list[str], bool] | None:
    """(name, command argv, debug) as typer passes them to commands.ssh.ssh (options only before NAME; the rest,
    a leading `--` included, is the command), or None: leave it to typer."""
    debug = False
    while args[:1] == ["--debug"]:
        debug, args = True, args[1:]
    if not args or not args[0] or args[0].startswith("-"):
        return None
    return args[0], args[1:], debug


def fast_logs_args(args: list[str]) -> dict[str, object] | None:
    """The keyword arguments of commands.logs.logs for ``args`` (after `logs`), or None: leave it to typer (--help,
    `--tail=N`, a --tail that is not a plain number, a second argument, anything unknown)."""
    kwargs: dict[str, object] = {"name": None, "tail": LOGS_TAIL, "since": None, "follow": False, "debug": False}
    rest = iter(args)
    for arg in rest:
        if arg in LOGS_FLAGS:
            kwargs[LOGS_FLAGS[arg]] = True
        elif arg in LOGS_VALUES:
            value = next(rest, None)  # click takes the next argument as the value, even one that starts with -
            if value is None or (LOGS_VALUES[arg] == "tail" and not (value.isascii() and value.isdigit())):
                return None
            kwargs[LOGS_VALUES[arg]] = int(value) if LOGS_VALUES[arg] == "tail" else value
        elif arg.startswith("-") or kwargs["name"] is not None or not arg:
            return None
        else:
            kwargs["name"] = arg
    return kwargs if kwargs["name"] is not None else None


def fast_config_args(command: str, args: list[str]) -> dict[str, object] | None:
    """The keyword arguments of commands.lifecycle.<command> for ``args`` (after the command), or None: leave it to
    typer (--help, a real run, --orphans, a second argument, anything unknown)."""
    positional, flags = CONFIG_COMMANDS[command]
    kwargs: dict[str, object] = {positional: None} | {key: False for key in flags.values()}
    kwargs |= CONFIG_DEFAULTS.get(command, {})
    for arg in args:
        if arg in flags:
            kwargs[flags[arg]] = True
        elif arg.startswith("-") or kwargs[positional] is not None or not arg:
            return None
        else:
            kwargs[positional] = arg
    if kwargs[positional] is None or (command == "teardown" and not (kwargs["dry_run"] or kwargs["yes"])):
        return None  # a teardown without --yes may prompt: typer's confirm and its Abort live in cli.py
    return kwargs


def _fast_config_command(command: str, kwargs: dict[str, object]) -> int:
    from orchestrator.commands import lifecycle

    getattr(lifecycle, command)(**kwargs)
    return 0


def _fast_logs(kwargs: dict[str, object]) -> int:
    from orchestrator.commands.logs import logs

    return logs(**kwargs)  # type: ignore[arg-type]


def _fast_ssh(name: str, argv: list[str], debug: bool) -> int:
    from orchestrator.commands.ssh import ssh

    return ssh(name, argv, debug=debug)


def _fast_status(kwargs: dict[str, object]) -> int:
    from orchestrator.commands.status import status

    status(**kwargs)  # type: ignore[arg-type]
    return 0


def run(body: Callable[[], int]) -> None:
    """Run a command body: Ctrl-C and SIGTERM raise KeyboardInterrupt, which the commands turn into exit 130."""
    from orchestrator.console import Console, interrupt_reported, report_error

    def sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, sigterm)
    try:
        raise SystemExit(body())
    except SystemExit as exc:
        # The work is over: a late signal must not turn a finished run into a crash at exit.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if exc.code == 130:
            if not interrupt_reported():
                report_error(Console(), 130, "interrupted; nothing was changed", None)
            # CPython may re-deliver a caught Ctrl-C as death-by-SIGINT at exit; the documented code is 130.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise


def main() -> None:
    # Until the CLI is loaded, Ctrl-C / SIGTERM just stop (no traceback from half-done imports).
    signal.signal(signal.SIGINT, _quiet_exit)
    signal.signal(signal.SIGTERM, _quiet_exit)
    # httpx imports its own command-line client (click, rich, pygments: ~50 ms) whenever those are installed, as
    # typer's dependencies are; the client is never used here, and httpx falls back without it.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    # paramiko imports invoke (asyncio, unittest.mock among its imports: ~40 ms) for one ssh_config feature,
    # `Match exec`; the orchestrator never parses an ssh_config with paramiko, and paramiko does without it.
    sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]
    # pydantic scans every installed distribution's entry points for its plugins before it builds the first
    # validator (~25 ms of each config command here); a third-party pydantic plugin has no part in validating the
    # CLI's config. A user's own setting is kept.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    args = sys.argv[1:]
    if args == ["--version"]:  # answered before typer loads (the option is also in --help)
        from orchestrator import installed_version

        print(f"orchestrator {installed_version()}")
        return
    if args[:1] == ["status"]:
        kwargs = fast_status_args(args[1:])
        if kwargs is not None:
            run(lambda: _fast_status(kwargs))
            return
    if args[:1] == ["ssh"]:
        parsed = fast_ssh_args(args[1:])
        if parsed is not None:
            run(lambda: _fast_ssh(*parsed))
            return
    if args[:1] == ["logs"]:
        logs_kwargs = fast_logs_args(args[1:])
        if logs_kwargs is not None:
            run(lambda: _fast_logs(logs_kwargs))
            return
    # status, ssh and logs (above) never load pydantic; everything from here on does.
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] in PLUGINS_OFF:
        sys.modules.setdefault(PLUGIN_LOADER, _no_plugins_loader())
    if args[:1] and args[0] in CONFIG_COMMANDS:
        config_kwargs = fast_config_args(args[0], args[1:])
        if config_kwargs is not None:
            run(lambda: _fast_config_command(args[0], config_kwargs))
            return
    from orchestrator.cli import main as cli_main

    cli_main()
