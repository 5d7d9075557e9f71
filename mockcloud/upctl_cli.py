"""Cobra/pflag-like command line parsing for the fake upctl: argv to command and flag values, checks, usage text."""

from __future__ import annotations

import re

from mockcloud.upctl_commands import COMMANDS, GLOBAL_FLAGS, CommandSpec, Flag


class UsageError(Exception):
    """A cobra-level error: printed as `Error: ...` (plus usage when `show_usage`), exit 100."""

    def __init__(self, message: str, command: CommandSpec | None = None, *, show_usage: bool = True) -> None:
        super().__init__(message)
        self.command = command
        self.show_usage = show_usage


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
