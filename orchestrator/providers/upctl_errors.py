"""upctl failures mapped once into the project's errors: credentials, capacity, not found, transient or not."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from orchestrator.errors import CapacityError, CredentialsError, ProviderError
from orchestrator.providers.base import NetworkNotEmpty, NetworkNotFound, ServerNotFound
from orchestrator.providers.upctl_parse import MIN_UPCTL_VERSION, as_str, dicts, snippet

__all__ = ["NetworkNotEmpty", "NetworkNotFound", "ServerNotFound", "map_failure", "wait_warning"]

_CAPACITY = re.compile(
    r"SERVER_RESOURCES_UNAVAILABLE|no (?:gpu |free )?capacity|out of capacity|insufficient capacity"
    r"|not enough (?:capacity|resources)|availability",
    re.IGNORECASE,
)
_TRANSIENT = re.compile(
    r"status=(?:5\d\d|429)\b|context deadline exceeded|connection (?:refused|reset)|timed? ?out\b|timeout"
    r"|temporary failure|unexpected EOF|TLS handshake|no such host|HTTP 5\d\d",
    re.IGNORECASE,
)
_NOT_FOUND = re.compile(r"cannot resolve argument: nothing found matching|SERVER_NOT_FOUND")
_NETWORK_NOT_FOUND = re.compile(r"cannot resolve argument: nothing found matching|NETWORK_NOT_FOUND")
_AUTH = re.compile(r"AUTHENTICATION_FAILED|INVALID_CREDENTIALS|invalid user credentials")
_HINTS: tuple[tuple[str, str], ...] = (
    ("INSUFFICIENT_CREDITS", "add credits to the UpCloud account"),
    (
        r"RESOURCE_LIMIT_EXCEEDED|exceed the account resource limits",
        "the account's resource limits (e.g. GPUs) do not allow another server: see `upctl account show`, "
        "delete servers you no longer need, or ask UpCloud support to raise the limit",
    ),
    (
        r"multiple storages matched|no storage with uuid, name or title",
        "set the OS template to an exact UUID (see `upctl storage list --public --template`)",
    ),
    (r"not a glob pattern, but matches multiple values", "several servers share this name; use the UUID"),
    (r"password-delivery method, ssh-keys", "configure at least one SSH public key"),
)
_ERROR_LINE = re.compile(r"^\s*Error:\s*(.*\S)\s*$")
_SUMMARY = re.compile(r"^Command execution failed for \d+ resource")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

NO_CREDENTIALS_HINT = (
    "export UPCLOUD_TOKEN=... (or UPCLOUD_USERNAME and UPCLOUD_PASSWORD), or put them in ~/.config/upctl.yaml"
)
BAD_CREDENTIALS_HINT = (
    "check UPCLOUD_TOKEN (or UPCLOUD_USERNAME/UPCLOUD_PASSWORD, ignored when a token is set) "
    "and the keys in ~/.config/upctl.yaml; the API user needs API access enabled"
)


def _clean_lines(text: str) -> list[str]:
    return [_ANSI.sub("", line) for line in re.split(r"\r\n|\r|\n", text)]


def _stdout_errors(stdout: str) -> list[str]:
    try:
        data = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        return []
    items = data if isinstance(data, list) else [data]
    return [as_str(d.get("error")) for d in dicts(items) if as_str(d.get("error"))]


def _stderr_errors(stderr: str, *, indented_only: bool) -> list[str]:
    found: list[str] = []
    for line in _clean_lines(stderr):
        m = _ERROR_LINE.match(line)
        if m and (line.startswith(" ") or not indented_only) and not _SUMMARY.match(m.group(1)):
            found.append(m.group(1))
    return found


def _unique(items: Iterable[str]) -> list[str]:
    """Distinct messages; a stderr detail that upctl wrapped onto several lines is a prefix of the stdout one."""
    distinct = list(dict.fromkeys(i for i in items if i))
    return [m for m in distinct if not any(o != m and o.startswith(m) for o in distinct)]


def _command(argv: Sequence[str]) -> str:
    words = [w for w in list(argv)[1:3] if not w.startswith("-")]
    return "upctl " + " ".join(words) if words else "upctl"


def map_failure(argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> ProviderError:
    """Turn a non-zero upctl exit into the project's error type (see upctl's exit codes 1-99, 100-103)."""
    common: dict[str, Any] = {"argv": argv, "returncode": returncode, "stderr": stderr}
    cmd = _command(argv)
    if returncode == 102:
        return CredentialsError("upctl found no UpCloud credentials", NO_CREDENTIALS_HINT, **common)
    if returncode == 103:
        return CredentialsError("UpCloud rejected the credentials", BAD_CREDENTIALS_HINT, **common)
    if returncode == 101:
        return ProviderError(f"{cmd} was interrupted", "run the command again", **common)
    if returncode == 100:
        detail = next(iter(_stderr_errors(stderr, indented_only=False)), snippet(stderr) or "no message")
        if re.search(r"cannot (?:resolve command line arguments|get resolver)", detail):
            return ProviderError(
                f"{cmd} could not reach the UpCloud API: {detail}",
                "check the network connection and https://status.upcloud.com, then retry",
                transient=bool(_TRANSIENT.search(detail) or "dial tcp" in detail),
                **common,
            )
        if "cannot load configuration" in detail:
            return ProviderError(
                f"upctl could not load its config file: {detail}", "fix or remove the --config path", **common
            )
        return ProviderError(
            f"upctl rejected its arguments ({cmd}): {detail}",
            f"this is an orchestrator bug or an old upctl; upgrade upctl to {MIN_UPCTL_VERSION} or newer",
            **common,
        )
    messages = _unique([*_stdout_errors(stdout), *_stderr_errors(stderr, indented_only=True)])
    if not messages:
        messages = _stderr_errors(stderr, indented_only=False) or [snippet(stderr) or "no error message"]
    text = "; ".join(messages)
    message = f"{cmd} failed: {text}"
    if _AUTH.search(text):
        return CredentialsError("UpCloud rejected the credentials", BAD_CREDENTIALS_HINT, **common)
    if list(argv)[1:2] == ["network"]:
        if "NETWORK_NOT_EMPTY" in text:
            return NetworkNotEmpty(
                message, "servers are still attached to the network: delete them first, then the network", **common
            )
        if _NETWORK_NOT_FOUND.search(text):
            return NetworkNotFound(message, "the network does not exist (already deleted?)", **common)
    if _NOT_FOUND.search(text):
        return ServerNotFound(message, "the server does not exist (already deleted?)", **common)
    if "SERVER_STATE_ILLEGAL" in text:
        return ProviderError(
            message, "the server is in the wrong state for this; check it with `upctl server show`", **common
        )
    if _CAPACITY.search(text):
        return CapacityError(
            message,
            "UpCloud has no free capacity for this plan in this zone; try another plan or zone",
            **common,
        )
    for pattern, hint in _HINTS:
        if re.search(pattern, text):
            return ProviderError(message, hint, **common)
    if _TRANSIENT.search(text):
        return ProviderError(message, "a temporary API or network problem; retrying may help", transient=True, **common)
    return ProviderError(message, "re-run the upctl command by hand with --debug for details", **common)


def wait_warning(stderr: str) -> str | None:
    """The `--wait` warning upctl prints (``! ...`` plus ``  Error: ...``) while still exiting 0, if any."""
    lines = _clean_lines(stderr)
    for i, line in enumerate(lines):
        if not line.startswith("! "):
            continue
        text = re.sub(r"\s+(?:>\s*)?\d+ s$", "", line[2:].rstrip()).strip()
        details: list[str] = []
        for follow in lines[i + 1 :]:
            if not follow.startswith("  "):
                break
            if m := _ERROR_LINE.match(follow):
                details.append(m.group(1))
        return f"{text}: {'; '.join(details)}" if details else text
    return None
