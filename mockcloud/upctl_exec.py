"""Execution core of the fake upctl: API errors, fault injection, per-target runs, results, exit codes."""

from __future__ import annotations

import fnmatch
import sys
import time

from mockcloud.upctl_output import go_json, go_yaml

TYPE_CHECKING = False  # typing is not imported at run time: the fake upctl starts once per call
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeAlias

    from mockcloud.upctl_cli import Parsed
    from mockcloud.upctl_output import Progress
    from mockcloud.upctl_world import FailSpec, World

API_BASE = "https://api.upcloud.com/1.3"
CAPACITY_TITLE = "There are not enough resources available to fulfil the request"
QUOTA_TITLE = "The request would exceed the account resource limits for GPUs"
# 429: the status is what counts (go-api renders it the same way as any API error); the code is not recorded.
RATE_LIMIT_TITLE = "Too many requests"


class CommandError(Exception):
    """A failure inside a command (validation, resolution, transport); message printed as-is."""


class ApiError(CommandError):
    """An error answer of the UpCloud API, rendered the way go-api formats it."""

    def __init__(self, title: str, code: str, status: int) -> None:
        super().__init__(f"{title} (type={code}, status={status})")
        self.code = code
        self.status = status


class Handled(CommandError):
    """An error already shown on its own progress line (`✗ Stopping server ...`)."""


def server_not_found(uuid: str) -> ApiError:
    return ApiError(f"The server {uuid} does not exist.", "SERVER_NOT_FOUND", 404)


class Result:
    """One successful target: the JSON value and the human text (`none` = prints nothing at all)."""

    __slots__ = ("value", "human", "none")

    def __init__(self, value: Any = None, human: str = "", none: bool = False) -> None:
        self.value = value
        self.human = human
        self.none = none


class Failure:
    """One failed target; `argument`/`resource` only when the failure happened after name resolution."""

    __slots__ = ("message", "argument", "resource")

    def __init__(self, message: str, argument: str = "", resource: str = "") -> None:
        self.message = message
        self.argument = argument
        self.resource = resource

    def as_json(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.argument:
            out["argument"] = self.argument
        out["error"] = self.message
        if self.resource:
            out["resource"] = self.resource
        return out


if TYPE_CHECKING:
    Outcome: TypeAlias = Result | Failure


class Ctx:
    """Everything a command handler needs."""

    def __init__(
        self,
        parsed: Parsed,
        world: World,
        faults: dict[str, Any],
        progress: Progress,
        output: str,
        username: str,
        command: str,
        fail: FailSpec | None = None,
        fail_used: bool = False,
    ) -> None:
        self.parsed = parsed
        self.world = world
        self.faults = faults
        self.progress = progress
        self.output = output
        self.username = username
        self.command = command
        self.fail = fail
        self.fail_used = fail_used

    def api(self, method: str, path: str) -> None:
        """Marks the point where the real upctl calls the API; an injected failure surfaces here."""
        if self.fail is None or self.fail.kind == "response_lost":
            return
        self.fail_used = True
        if self.fail.kind == "timeout":
            self.timed_out(method, path)
        if self.fail.kind == "capacity":
            raise ApiError(CAPACITY_TITLE, "SERVER_RESOURCES_UNAVAILABLE", 409)
        if self.fail.kind == "quota":
            raise ApiError(QUOTA_TITLE, "RESOURCE_LIMIT_EXCEEDED", 409)
        if self.fail.kind == "ratelimit":
            raise ApiError(RATE_LIMIT_TITLE, "TOO_MANY_REQUESTS", 429)
        raise ApiError("Internal server error", "INTERNAL_ERROR", 500)

    def timed_out(self, method: str, path: str) -> None:
        """go-api's client timeout: no answer within the deadline (the API may still have done the work)."""
        time.sleep(max(0.0, self.fail.timeout_seconds if self.fail else 0.0))
        verb = {"GET": "Get", "POST": "Post", "PUT": "Put", "DELETE": "Delete"}[method]
        raise CommandError(
            f'{verb} "{API_BASE}{path}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        )

    def answer_lost(self, method: str, path: str) -> None:
        """After the API did the work: a `response_lost` fault times out waiting for its answer."""
        if self.fail is not None and self.fail.kind == "response_lost":
            self.timed_out(method, path)

    def failed(self, key: str, exc: Exception) -> Handled:
        """HandleError: mark progress line `key` failed and return the error to raise."""
        self.progress.error(key, str(exc))
        return Handled(str(exc))


def simulated_wait(ctx: Ctx) -> None:
    """faults.json ``wait_seconds``: `--wait` takes this long (upctl polls every 5 s) after the API call succeeded."""
    time.sleep(max(0.0, float(ctx.faults.get("wait_seconds") or 0)))


def resolve_server(servers: list[dict[str, Any]], arg: str) -> list[str]:
    """upctl's resolver: exact > case-insensitive > glob (title/hostname) > UUID prefix."""
    best: dict[str, int] = {}
    for server in servers:
        score = 0
        for value in (server["title"], server["hostname"]):
            if value == arg:
                score = max(score, 4)
            elif value.lower() == arg.lower():
                score = max(score, 3)
            if fnmatch.fnmatchcase(value, arg):
                score = max(score, 2)
        if server["uuid"] == arg:
            score = 4
        elif server["uuid"].startswith(arg):
            score = max(score, 1)
        if score:
            best[server["uuid"]] = score
    for level in (4, 3, 2, 1):
        found = [uuid for uuid, score in best.items() if score == level]
        if len(found) > 1 and level != 2:
            raise CommandError(
                f"'{arg}' is not a glob pattern, but matches multiple values. To target "
                "multiple resources with single argument, use a glob pattern, e.g. server-*"
            )
        if found:
            return found
    raise CommandError(f"nothing found matching '{arg}'")


if TYPE_CHECKING:
    NoArgHandler: TypeAlias = Callable[[Ctx], Result]
    TargetHandler: TypeAlias = Callable[[Ctx, str, dict[str, Any]], Result]


def run_without_arguments(ctx: Ctx, handler: NoArgHandler) -> list[Outcome]:
    try:
        return [handler(ctx)]
    except Handled as exc:
        return [Failure(str(exc))]
    except CommandError as exc:
        ctx.progress.command_failed("", str(exc))
        return [Failure(str(exc))]


def run_targets(ctx: Ctx, handler: TargetHandler, *, resolve: bool = True) -> list[Outcome]:
    """Resolve every argument from one snapshot, then run the handler per resolved target, in order."""
    servers: list[dict[str, Any]] = ctx.world.snapshot()["servers"] if resolve else []
    by_uuid = {s["uuid"]: s for s in servers}
    outcomes: list[Outcome] = []
    for arg in ctx.parsed.positionals:
        try:
            targets = resolve_server(servers, arg) if resolve else [arg]
        except CommandError as exc:
            message = f"cannot resolve argument: {exc}"
            ctx.progress.command_failed(arg, message)
            outcomes.append(Failure(message))
            continue
        for target in targets:
            try:
                outcomes.append(handler(ctx, target, by_uuid.get(target, {})))
            except Handled as exc:
                outcomes.append(Failure(str(exc), arg, target))
            except CommandError as exc:
                ctx.progress.command_failed(arg, str(exc))
                outcomes.append(Failure(str(exc), arg, target))
    return outcomes


def render(ctx: Ctx, outcomes: list[Outcome]) -> int:
    """output.Render: stdout per format, then the failure summary on stderr; returns the exit code."""
    ctx.progress.stop()
    if ctx.output == "human":
        human = "".join(o.human for o in outcomes if isinstance(o, Result))
        sys.stdout.write(human + "\n" if human else "")
    else:
        values = [
            o.value if isinstance(o, Result) else o.as_json()
            for o in outcomes
            if not (isinstance(o, Result) and o.none)
        ]
        if values:
            document = values[0] if len(values) == 1 else values
            sys.stdout.write(go_json(document) if ctx.output == "json" else go_yaml(document))
    sys.stdout.flush()
    failed = sum(1 for o in outcomes if isinstance(o, Failure))
    if failed:
        sys.stderr.write(f"Error: Command execution failed for {failed} resource(s)\n")
        return min(failed, 99)
    return 0
