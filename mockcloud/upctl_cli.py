"""Cobra/pflag-like command line parsing for the fake upctl: command tree, flag table, usage text."""

from __future__ import annotations

import re

# The fake upctl starts once per call: no typing/dataclasses at run time (they cost milliseconds to import); the
# annotations are strings (PEP 563), read by type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal, TypeAlias

    FlagKind: TypeAlias = Literal["string", "int", "bool", "toggle", "slice", "array", "duration", "optional"]
    ArgsKind: TypeAlias = Literal["none", "multi", "group"]


class UsageError(Exception):
    """A cobra-level error: printed as `Error: ...` (plus usage when `show_usage`), exit 100."""

    def __init__(self, message: str, command: CommandSpec | None = None, *, show_usage: bool = True) -> None:
        super().__init__(message)
        self.command = command
        self.show_usage = show_usage


class Flag:
    """One flag. `target` lets --enable-x/--disable-x share a value; `bare` is pflag's NoOptDefVal."""

    __slots__ = ("name", "kind", "default", "short", "bare", "target", "help")

    def __init__(
        self,
        name: str,
        kind: FlagKind = "string",
        default: object = None,
        short: str = "",
        bare: str | None = None,
        target: str = "",
        help: str = "",
    ) -> None:
        self.name = name
        self.kind: FlagKind = kind
        self.default = default
        self.short = short
        self.bare = bare
        self.target = target
        self.help = help

    @property
    def key(self) -> str:
        return self.target or self.name

    @property
    def takes_value(self) -> bool:
        return self.bare is None and self.kind not in ("bool", "toggle")

    @property
    def label(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"


def _toggle(name: str, help_text: str = "", *, default: bool = False, target: str = "") -> Flag:
    return Flag(name, "toggle", default, bare="false" if default else "true", target=target, help=help_text)


GLOBAL_FLAGS: tuple[Flag, ...] = (
    Flag("config", help="Configuration file path."),
    Flag("output", default="human", short="o", help="Output format: human, json or yaml."),
    _toggle("force-colours", "Force coloured output."),
    _toggle("no-colours", "Disable coloured output."),
    Flag("debug", "bool", False, bare="true", help="Print out more verbose debug logs."),
    Flag("client-timeout", "duration", "0s", short="t", help="Client timeout to use in API calls."),
    Flag("help", "bool", False, short="h", bare="true", help="help for this command"),
)


class CommandSpec:
    """One node of the command tree."""

    __slots__ = ("path", "short", "args", "flags", "required", "together", "aliases", "offline", "arg_help")

    def __init__(
        self,
        path: tuple[str, ...],
        short: str,
        args: ArgsKind = "none",
        flags: tuple[Flag, ...] = (),
        required: tuple[str, ...] = (),
        together: tuple[tuple[str, str], ...] = (),
        aliases: tuple[str, ...] = (),
        offline: bool = False,
        arg_help: str = "<UUID/Title/Hostname...>",
    ) -> None:
        self.path = path
        self.short = short
        self.args: ArgsKind = args
        self.flags = flags
        self.required = required
        self.together = together
        self.aliases = aliases
        self.offline = offline
        self.arg_help = arg_help

    @property
    def name(self) -> str:
        return "upctl " + " ".join(self.path) if self.path else "upctl"

    def find_flag(self, name: str) -> Flag | None:
        return next((f for f in (*self.flags, *GLOBAL_FLAGS) if f.name == name), None)

    def find_short(self, short: str) -> Flag | None:
        return next((f for f in (*self.flags, *GLOBAL_FLAGS) if f.short == short), None)


_CREATE_FLAGS: tuple[Flag, ...] = (
    Flag("avoid-host", "int", 0),
    Flag("boot-order", default=""),
    Flag("cores", "int", 0),
    _toggle("create-password", "Create an admin password."),
    _toggle("enable-firewall", "Enable firewall."),
    _toggle("enable-metadata", "Enable metadata service."),
    _toggle("enable-remote-access"),
    Flag("host", "int", 0),
    Flag("hostname", default="", help="Server hostname."),
    Flag("label", "array", (), help="Labels in key=value format, repeatable."),
    Flag("memory", "int", 0),
    Flag("network", "array", ()),
    Flag("os", default="Ubuntu Server 24.04 LTS (Noble Numbat)"),
    Flag("os-storage-size", "int", 0, help="OS storage size in GiB."),
    _toggle("os-storage-encrypt"),
    Flag("password-delivery", default="none"),
    Flag("plan", default="1xCPU-2GB"),
    Flag("remote-access-password", default=""),
    Flag("remote-access-type", default=""),
    Flag("server-group", default=""),
    Flag("simple-backup", default=""),
    Flag("ssh-keys", "slice", (), help="SSH public keys or files with keys."),
    Flag("storage", "array", ()),
    Flag("time-zone", default="UTC"),
    Flag("title", default=""),
    Flag("user-data", default=""),
    Flag("username", default=""),
    Flag("video-model", default="vga"),
    _toggle("wait", "Wait for server to be in started state before returning."),
    Flag("zone", default="", help="Zone where to create the server."),
)


def _enable_disable(name: str) -> tuple[Flag, Flag]:
    return (
        Flag(f"enable-{name}", "toggle", None, bare="true", target=name),
        Flag(f"disable-{name}", "toggle", None, bare="false", target=name),
    )


_MODIFY_FLAGS: tuple[Flag, ...] = (
    Flag("boot-order", default=""),
    Flag("cores", "int", 0),
    Flag("hostname", default=""),
    *_enable_disable("firewall"),
    Flag("label", "array", ()),
    Flag("memory", "int", 0),
    *_enable_disable("metadata"),
    Flag("plan", default=""),
    Flag("simple-backup", default=""),
    Flag("title", default=""),
    Flag("time-zone", default=""),
    Flag("video-model", default=""),
    *_enable_disable("remote-access"),
    Flag("remote-access-type", default=""),
    Flag("remote-access-password", default=""),
)

_FIREWALL_CREATE_FLAGS: tuple[Flag, ...] = (
    Flag("direction", default=""),
    Flag("action", default=""),
    Flag("family", default=""),
    Flag("position", "int", 0),
    Flag("protocol", default=""),
    Flag("icmp-type", default=""),
    Flag("dest-ipaddress-block", default=""),
    Flag("destination-port-start", default=""),
    Flag("destination-port-end", default=""),
    Flag("src-ipaddress-block", default=""),
    Flag("source-port-start", default=""),
    Flag("source-port-end", default=""),
    Flag("comment", default=""),
)

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec((), "UpCloud command-line interface", "group"),
    CommandSpec(("version",), "Display software information", offline=True),
    CommandSpec(("account",), "Manage account", "group", aliases=("acc",)),
    CommandSpec(("account", "show"), "Show account"),
    CommandSpec(("server",), "Manage servers", "group", aliases=("srv",)),
    CommandSpec(
        ("server", "plans"),
        "List server plans",
        flags=(Flag("prices", default=""), Flag("prices-duration", default="month")),
    ),
    CommandSpec(
        ("server", "list"),
        "List current servers",
        flags=(Flag("show-ip-addresses", "optional", "none", bare="all"),),
    ),
    CommandSpec(("server", "show"), "Show server details", "multi"),
    CommandSpec(("server", "create"), "Create a new server", flags=_CREATE_FLAGS, required=("hostname", "zone")),
    CommandSpec(
        ("server", "stop"),
        "Stop a server",
        "multi",
        flags=(
            Flag("type", default="soft"),
            _toggle("wait", "Wait for server to be in stopped state before returning."),
        ),
    ),
    CommandSpec(
        ("server", "start"),
        "Start a server",
        "multi",
        flags=(Flag("avoid-host", "int", 0), Flag("host", "int", 0)),
    ),
    CommandSpec(
        ("server", "delete"),
        "Delete a server",
        "multi",
        flags=(
            _toggle("delete-storages", "Delete storages that are attached to the server."),
            _toggle("stop", "Stop the server before deleting it."),
        ),
    ),
    CommandSpec(("server", "modify"), "Modify a server", "multi", flags=_MODIFY_FLAGS),
    CommandSpec(("server", "firewall"), "Manage server firewall rules", "group"),
    CommandSpec(
        ("server", "firewall", "create"),
        "Create a new firewall rule",
        "multi",
        flags=_FIREWALL_CREATE_FLAGS,
        required=("action", "direction"),
        together=(
            ("destination-port-start", "destination-port-end"),
            ("source-port-start", "source-port-end"),
        ),
    ),
    CommandSpec(("server", "firewall", "show"), "Show server firewall details", "multi"),
    CommandSpec(
        ("server", "firewall", "delete"),
        "Removes a firewall rule from a server",
        "multi",
        flags=(Flag("position", "int", 0),),
        required=("position",),
    ),
    CommandSpec(("zone",), "Display zone information", "group"),
    CommandSpec(("zone", "list"), "List available zones"),
    CommandSpec(("zone", "devices"), "List available devices for each zone"),
    CommandSpec(
        ("zone", "devices", "show"),
        "Show detailed device availability for the given zone",
        "multi",
        arg_help="<Zone...>",
    ),
    CommandSpec(("storage",), "Manage storages", "group", aliases=("st",)),
    CommandSpec(
        ("storage", "list"),
        "List current storages",
        flags=(
            _toggle("all", "Show all storages."),
            _toggle("private", "Show private storages (default).", default=True),
            _toggle("public", "Show public storages."),
            _toggle("normal", "Show only normal storages."),
            _toggle("backup", "Show only backup storages."),
            _toggle("cdrom", "Show only cdrom storages."),
            _toggle("template", "Show only template storages."),
        ),
    ),
    CommandSpec(("network",), "Manage networks", "group", aliases=("net",)),
    CommandSpec(
        ("network", "create"),
        "Create a network",
        flags=(
            Flag("name", default=""),
            Flag("zone", default=""),
            Flag("router", default=""),
            Flag("ip-network", "array", ()),
        ),
        required=("name", "zone", "ip-network"),
    ),  # fmt: skip
    CommandSpec(
        ("network", "list"),
        "List networks, by default private networks only",
        flags=(
            Flag("zone", default=""),
            _toggle("all", "Show all networks."),
            _toggle("public", "Show public networks instead of private networks."),
            _toggle("utility", "Show utility networks instead of private networks."),
        ),
    ),  # fmt: skip
    CommandSpec(("network", "show"), "Show network details", "multi"),
    CommandSpec(("network", "delete"), "Delete a network", "multi"),
    CommandSpec(("ip-address",), "Manage IP addresses", "group", aliases=("ip",)),
    CommandSpec(("ip-address", "list"), "List IP addresses"),
)
_BY_PATH: dict[tuple[str, ...], CommandSpec] = {c.path: c for c in COMMANDS}


class Parsed:
    """The outcome of parsing one argv."""

    __slots__ = ("command", "values", "changed", "positionals")

    def __init__(
        self,
        command: CommandSpec,
        values: dict[str, object],
        changed: set[str] | None = None,
        positionals: list[str] | None = None,
    ) -> None:
        self.command = command
        self.values = values
        self.changed: set[str] = set() if changed is None else changed
        self.positionals: list[str] = [] if positionals is None else positionals

    def string(self, name: str) -> str:
        return str(self.values.get(name) or "")

    def integer(self, name: str) -> int:
        value = self.values.get(name) or 0
        return value if isinstance(value, int) else 0

    def enabled(self, name: str) -> bool:
        return self.values.get(name) is True

    def strings(self, name: str) -> list[str]:
        value = self.values.get(name)
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else []

    @property
    def help(self) -> bool:
        return self.enabled("help")


def _child(path: tuple[str, ...], word: str) -> CommandSpec | None:
    for spec in COMMANDS:
        if len(spec.path) == len(path) + 1 and spec.path[:-1] == path and word in (spec.path[-1], *spec.aliases):
            return spec
    return None


def _find_command(argv: list[str]) -> tuple[CommandSpec, set[int]]:
    """Walk subcommand words (skipping flags and their values); returns the command and the word indexes."""
    spec = _BY_PATH[()]
    used: set[int] = set()
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            break
        if token.startswith("-") and token != "-":
            if "=" not in token:
                flag = (
                    spec.find_flag(token[2:])
                    if token.startswith("--")
                    else (spec.find_short(token[1]) if len(token) == 2 else None)
                )
                if flag is not None and flag.takes_value:
                    i += 1
            i += 1
            continue
        child = _child(spec.path, token)
        if child is None:
            if spec.path == () and token not in ("help",):
                raise UsageError(
                    f'unknown command "{token}" for "upctl"\nRun \'upctl --help\' for usage.',
                    show_usage=False,
                )
            break
        spec = child
        used.add(i)
        i += 1
    return spec, used


_BOOL_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_BOOL_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_DURATION = r"^[+-]?(0|(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$"  # compiled (and cached by re) on use


def _set(parsed: Parsed, flag: Flag, raw: str) -> None:
    spec = parsed.command

    def bad(reason: str) -> UsageError:
        return UsageError(f'invalid argument "{raw}" for "{flag.label}" flag: {reason}', spec)

    key = flag.key
    if flag.kind in ("bool", "toggle"):
        if raw not in _BOOL_TRUE + _BOOL_FALSE:
            raise bad(f'strconv.ParseBool: parsing "{raw}": invalid syntax')
        if flag.kind == "toggle" and key in parsed.changed:
            raise bad("cannot set twice")
        parsed.values[key] = raw in _BOOL_TRUE
    elif flag.kind == "int":
        if not re.fullmatch(r"[+-]?\d+", raw):
            raise bad(f'strconv.ParseInt: parsing "{raw}": invalid syntax')
        parsed.values[key] = int(raw)
    elif flag.kind == "duration":
        if not re.match(_DURATION, raw):
            raise bad(f'time: invalid duration "{raw}"')
        parsed.values[key] = raw
    elif flag.kind in ("slice", "array"):
        items = [raw] if flag.kind == "array" else [p.strip() for p in raw.split(",") if raw]
        previous = parsed.values.get(key) if key in parsed.changed else []
        parsed.values[key] = [*(previous if isinstance(previous, list) else []), *items]
    else:
        parsed.values[key] = raw
    parsed.changed.add(key)


def parse(argv: list[str]) -> Parsed:
    """Parse like cobra+pflag: flags anywhere after the command; `--f v`, `--f=v`, `-o json`, `-ojson`."""
    spec, used = _find_command(argv)
    flags = (*spec.flags, *GLOBAL_FLAGS)
    parsed = Parsed(spec, {f.key: list(f.default) if isinstance(f.default, tuple) else f.default for f in flags})
    rest = [t for i, t in enumerate(argv) if i not in used]
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if token == "--":
            parsed.positionals.extend(rest[i:])
            break
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            flag = spec.find_flag(name)
            if flag is None:
                raise UsageError(f"unknown flag: --{name}", spec)
            if not eq and flag.takes_value:
                if i >= len(rest):
                    raise UsageError(f"flag needs an argument: {token}", spec)
                value, i = rest[i], i + 1
            _set(parsed, flag, value if eq or flag.takes_value else str(flag.bare or "true"))
        elif token.startswith("-") and token != "-":
            shorts = token[1:]
            while shorts:
                char, shorts = shorts[0], shorts[1:]
                flag = spec.find_short(char)
                if flag is None:
                    raise UsageError(f"unknown shorthand flag: '{char}' in {token}", spec)
                if shorts.startswith("="):
                    _set(parsed, flag, shorts[1:])
                    break
                if flag.takes_value:
                    if shorts:
                        _set(parsed, flag, shorts)
                    elif i < len(rest):
                        _set(parsed, flag, rest[i])
                        i += 1
                    else:
                        raise UsageError(f"flag needs an argument: '{char}' in {token}", spec)
                    break
                _set(parsed, flag, str(flag.bare or "true"))
        else:
            parsed.positionals.append(token)
    return parsed


def check_required(parsed: Parsed) -> None:
    spec = parsed.command
    missing = sorted(name for name in spec.required if name not in parsed.changed)
    if missing:
        names = ", ".join(f'"{n}"' for n in missing)
        raise UsageError(f"required flag(s) {names} not set", spec)
    for group in spec.together:
        given = [n for n in group if n in parsed.changed]
        if given and len(given) != len(group):
            absent = [n for n in group if n not in parsed.changed]
            raise UsageError(
                f"if any flags in the group [{' '.join(group)}] are set they must all be set; "
                f"missing [{' '.join(absent)}]",
                spec,
            )


_TYPE_NAMES = {"slice": "strings", "array": "stringArray", "optional": "string", "bool": "", "toggle": ""}


def _flag_line(flag: Flag) -> str:
    kind = _TYPE_NAMES.get(flag.kind, flag.kind)
    text = f"  {flag.label} {kind}".ljust(36) + flag.help
    if flag.default not in (None, "", 0, False, ()):
        text += f" (default {flag.default})"
    return text.rstrip()


def usage(spec: CommandSpec) -> str:
    """Short usage text in the shape of upctl's template."""
    children = [c for c in COMMANDS if len(c.path) == len(spec.path) + 1 and c.path[:-1] == spec.path]
    lines = ["Usage:"]
    if spec.args == "group":
        lines.append(f"  {spec.name} [command]")
    else:
        suffix = f" {spec.arg_help}" if spec.args == "multi" else ""
        lines.append(f"  {spec.name}{suffix} [flags]")
    if children:
        lines += ["", "Available Commands:"]
        lines += [f"  {c.path[-1]:<14} {c.short}" for c in children]
    if spec.flags:
        lines += ["", "Options:"]
        lines += [_flag_line(f) for f in spec.flags]
    lines += ["", "Global options:", *(_flag_line(f) for f in GLOBAL_FLAGS)]
    if children:
        lines += ["", f'Use "{spec.name} [command] --help" for more information about a command.']
    return "\n".join(lines) + "\n"
