"""A fake `upctl` (UpCloud CLI v3.35.0) that keeps a local world; same argv, JSON, stderr and exit codes.

Run it as ``python -m mockcloud.upctl ...`` or through ``mockcloud/bin/upctl``. The world lives in
``$FAKE_UPCTL_HOME`` (required; exit 100 when unset):

``state.json``
    servers, storages, firewall rules and fault counters, guarded by ``state.lock`` (flock) and replaced
    atomically. Read it with :func:`read_state`.
``hosts.json`` (optional)
    a list of ``{"ipv4", "authorized_keys", "poweroff": [argv...] | null}``. ``server create`` binds the first
    entry whose ipv4 no existing server uses (none free: ``SERVER_RESOURCES_UNAVAILABLE``, exit 1), uses that
    ipv4 as the public IPv4 and writes the ``--ssh-keys`` to ``authorized_keys`` (0644). ``server stop`` (when
    the server really stops) and ``server delete`` run ``poweroff``; delete also empties ``authorized_keys``.
    Without the file, public IPv4s are invented in 94.237.0.0/16.
``faults.json`` (optional; write it with :func:`set_faults`), a JSON object with these keys:
    ``fail``: ``{"server create": {"times": N, "kind": "5xx"|"capacity"|"quota"|"timeout"|"response_lost"|"auth"
    |"ratelimit", "timeout_seconds": 2}}`` — the next N invocations of that command (its canonical path, e.g.
    ``"server stop"``) fail at their API call: 5xx → ``Internal server error (type=INTERNAL_ERROR,
    status=500)``; capacity → ``SERVER_RESOURCES_UNAVAILABLE`` (409); quota → ``RESOURCE_LIMIT_EXCEEDED``
    (409); timeout → sleep ``timeout_seconds`` (default 2) then a Go ``context deadline exceeded`` error;
    response_lost (``server create`` only) → the server *is* created, then the same timeout error: the API
    did the work but the client never got the answer (an interrupted create).
    auth → the credentials are rejected (exit 103, as if the token was revoked meanwhile); ratelimit → 429.
    Each failing target counts in the exit code; counters live in state.json, restarted when ``fail`` changes.
    An invocation that never reaches the API call (its server name does not resolve) leaves the failure pending;
    ``"skip": N`` lets the first N invocations of the command succeed before the failures start.
    ``wait_timeout``: true — ``--wait`` never sees the target state: ``! ...`` + ``  Error: context deadline
    exceeded`` on stderr, exit 0; the server is still maintenance (create) / started (stop) and settles after
    ``boot_polls`` further ``server show`` calls.
    ``wait_seconds``: N — ``server create --wait`` / ``server stop --wait`` sleep N seconds after the API call
    (the server already exists / is already stopping), like upctl's polling.
    ``boot_polls``: N (default 1) — a server created without ``--wait`` shows ``maintenance`` for the next N
    ``server show`` calls, then ``started``. With ``--wait`` it is ``started`` before the command returns.
    ``stuck_state``: "maintenance"|"error" — servers created meanwhile stay in that state for good
    (a server in ``error`` may still be deleted).
    ``stop_state``: "error" — ``server stop`` leaves the server in ``error`` for good; with ``--wait`` upctl never
    sees ``stopped``: ``! ...`` + ``  Error: context deadline exceeded`` on stderr, exit 0 (as ``wait_timeout``).
    ``devices``: ``{zone: {plan: amount}}`` — GPU stock for ``zone devices`` and for GPU plan creation
    (default: fi-hel2 has 10 of every L40S plan).

Credentials as upctl reads them: ``UPCLOUD_TOKEN`` or ``UPCLOUD_USERNAME`` + ``UPCLOUD_PASSWORD`` (env first,
then the ``--config`` file or ``$XDG_CONFIG_HOME/upctl.yaml``/``~/.config/upctl.yaml``); none → exit 102; the
token ``invalid`` or the password ``invalid`` → exit 103. ``version`` and ``--help`` need none.
"""

from __future__ import annotations

import os
import sys

from mockcloud import upctl_output
from mockcloud import upctl_paths as paths
from mockcloud.upctl_cli import Parsed, UsageError, check_required, parse, usage
from mockcloud.upctl_commands import CommandSpec
from mockcloud.upctl_exec import Ctx, render, run_targets, run_without_arguments
from mockcloud.upctl_output import Progress, go_json, go_yaml
from mockcloud.upctl_world import (
    World,
    WorldError,
    home_from_env,
    read_state,
    return_failure,
    set_faults,
    take_failure,
)

TYPE_CHECKING = False  # typing is not imported at run time: the fake upctl starts once per call
if TYPE_CHECKING:
    from typing import Any

    from mockcloud.upctl_exec import NoArgHandler, Outcome, TargetHandler

__all__ = ["main", "read_state", "set_faults"]

OUTPUTS = ("human", "json", "yaml")
MISSING_CREDENTIALS = (
    "user credentials not found, these must be set in config file ({}) or via environment "
    "variables or in a keyring (UpCloud)"
)
INVALID_CREDENTIALS = "invalid user credentials, authentication failed using the given username and password"
LONG_HELP = (
    "UpCloud command-line interface\n\n`upctl` provides a command-line interface to UpCloud services. "
    "(This is the local fake used by tests.)\n\n"
)

# Handlers as (module in mockcloud, function): only the module of the command being run is imported.
NO_ARG_HANDLERS: dict[tuple[str, ...], tuple[str, str]] = {
    ("account", "show"): ("upctl_info", "account_show"),
    ("server", "plans"): ("upctl_info", "plans"),
    ("server", "list"): ("upctl_server", "list_servers"),
    ("server", "create"): ("upctl_create", "create"),
    ("zone", "list"): ("upctl_info", "zone_list"),
    ("zone", "devices"): ("upctl_info", "zone_devices"),
    ("storage", "list"): ("upctl_info", "storage_list"),
    ("ip-address", "list"): ("upctl_info", "ip_list"),
    ("network", "create"): ("upctl_network", "create"),
    ("network", "list"): ("upctl_network", "list_networks"),
}
TARGET_HANDLERS: dict[tuple[str, ...], tuple[str, str]] = {
    ("server", "show"): ("upctl_server", "show"),
    ("server", "stop"): ("upctl_server", "stop"),
    ("server", "start"): ("upctl_server", "start"),
    ("server", "delete"): ("upctl_server", "delete"),
    ("server", "modify"): ("upctl_server", "modify"),
    ("server", "firewall", "create"): ("upctl_server", "firewall_create"),
    ("server", "firewall", "show"): ("upctl_server", "firewall_show"),
    ("server", "firewall", "delete"): ("upctl_server", "firewall_delete"),
    ("zone", "devices", "show"): ("upctl_info", "zone_devices_show"),
    ("network", "show"): ("upctl_network", "show"),
    ("network", "delete"): ("upctl_network", "delete"),
}


def _handler(module: str, name: str) -> Any:
    """mockcloud.<module>.<name>, importing that module now."""
    return getattr(__import__(f"mockcloud.{module}", fromlist=[name]), name)


def _home() -> str:
    """``str(Path.home())``."""
    home = os.path.expanduser("~")
    if home[:1] == "~":
        raise RuntimeError("Could not determine home directory.")
    return paths.pure(home)


def _config_dir() -> str:
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    return paths.pure(xdg) if xdg and os.path.isabs(xdg) else paths.join(_home(), ".config")


def _parse_config(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        yaml = upctl_output.import_yaml()
        data = yaml.safe_load(text)
    except ImportError:  # pragma: no cover - plain `key: value` lines are enough for upctl.yaml
        data = {
            k.strip(): v.strip().strip("'\"")
            for k, _, v in (
                line.partition(":") for line in text.splitlines() if ":" in line and not line.startswith("#")
            )
        }
    except Exception as exc:  # noqa: BLE001 - any YAML error is a config error
        raise UsageError(
            f"cannot load configuration: unable to parse config from file '{path}': While parsing config: {exc}"
        ) from exc
    return {str(k): v for k, v in data.items()} if isinstance(data, dict) else {}


def load_config(parsed: Parsed) -> tuple[str, dict[str, Any]]:
    """viper: the --config file (must exist) or the first upctl.{json,yaml,yml} in the default dirs."""
    explicit = parsed.string("config")
    if explicit:
        path = paths.pure(explicit)
        if not paths.is_file(path):
            raise UsageError(
                f"cannot load configuration: unable to parse config from file '{explicit}': "
                f"open {explicit}: no such file or directory",
                parsed.command,
            )
        return explicit, _parse_config(path)
    for directory in (_config_dir(), paths.join(paths.pure(os.environ.get("HOME", _home())), ".config")):
        for name in ("upctl.json", "upctl.yaml", "upctl.yml", "upctl"):
            if paths.is_file(paths.join(directory, name)):
                return paths.join(directory, name), _parse_config(paths.join(directory, name))
    return "", {}


def _setting(name: str, config: dict[str, Any]) -> str:
    value = os.environ.get(f"UPCLOUD_{name.upper().replace('-', '_')}", "")
    return value or str(config.get(name) or "")


def _fail(message: str, code: int, spec: CommandSpec | None = None) -> int:
    sys.stderr.write(f"Error: {message}\n")
    if spec is not None:
        sys.stderr.write(usage(spec))
    return code


def main(argv: list[str] | None = None) -> int:
    """Run one upctl invocation; returns its exit code (a bug in the fake itself exits 100, never 1-99)."""
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except Exception:  # noqa: BLE001 - keep fake bugs apart from "N targets failed"
        import traceback

        traceback.print_exc()
        return _fail("internal error in the fake upctl (traceback above)", 100)


def _main(args: list[str]) -> int:
    try:
        parsed = parse(args)
        spec = parsed.command
        if parsed.help or spec.path == ():
            sys.stdout.write((LONG_HELP if spec.path == () else "") + usage(spec))
            return 0
        if "output" in parsed.changed and parsed.string("output") not in OUTPUTS:
            raise UsageError(f"output: {parsed.string('output')} does not validate as in(human|json|yaml)", spec)
        config_used, config = load_config(parsed)
        output = parsed.string("output") if "output" in parsed.changed else (_setting("output", config) or "human")
        if output not in OUTPUTS:
            raise UsageError(f"output format '{output}' not accepted", spec)
        check_required(parsed)
    except UsageError as exc:
        return _fail(str(exc), 100, exc.command if exc.show_usage else None)
    if spec.offline:
        info = _handler("upctl_info", "version")()
        sys.stdout.write(
            info.human + "\n" if output == "human" else go_json(info.value) if output == "json" else go_yaml(info.value)
        )
        return 0
    token, username = _setting("token", config), _setting("username", config)
    password = _setting("password", config)
    if not token and not (username and password):
        where = f"used {config_used}" if config_used else f"default location {paths.join(_config_dir(), 'upctl.yaml')}"
        return _fail(MISSING_CREDENTIALS.format(where), 102)
    if spec.args == "group":
        sys.stderr.write(usage(spec))
        return 0
    if spec.args == "multi" and not parsed.positionals:
        return _fail("at least one positional argument is required", 100)
    if token == "invalid" or (not token and password == "invalid"):
        return _fail(INVALID_CREDENTIALS, 103)
    try:
        world = World(home_from_env())
        ctx = Ctx(parsed, world, world.faults(), Progress(), output, username or "fakeuser", " ".join(spec.path))
        if ctx.command in (ctx.faults.get("fail") or {}):
            with world.transaction() as state:
                ctx.fail = take_failure(state, ctx.faults, ctx.command)
            if ctx.fail is not None and ctx.fail.kind == "auth":  # the API refused the token on the first call
                return _fail(INVALID_CREDENTIALS, 103)
        outcomes = _dispatch(ctx)
        if ctx.fail is not None and not ctx.fail_used:
            with world.transaction() as state:
                return_failure(state, ctx.command)
    except WorldError as exc:
        return _fail(str(exc), 100)
    return render(ctx, outcomes)


def _dispatch(ctx: Ctx) -> list[Outcome]:
    path = ctx.parsed.command.path
    if path in NO_ARG_HANDLERS:
        no_arg: NoArgHandler = _handler(*NO_ARG_HANDLERS[path])
        return run_without_arguments(ctx, no_arg)
    target: TargetHandler = _handler(*TARGET_HANDLERS[path])
    return run_targets(ctx, target, resolve=path[0] == "server")


def wrapper_main() -> int:
    """mockcloud/bin/upctl's entry: python was started without `site` (-S) to start faster; the few things
    that need site-packages (PyYAML: ``-o yaml``, a YAML config file) add them to sys.path first."""
    upctl_output.SITE_DEFERRED = bool(sys.flags.no_site)
    return main()


if __name__ == "__main__":
    sys.exit(main())
