"""The recorded server's state, asked of the cloud before anything connects to it; and server-running, the step.

`extend` runs server-running first: a server its auto-stop timer powered off answers no SSH, so connecting would
wait out the connect step's timeout (minutes) and end in an SSH error; this says what happened at once (exit 3),
and how to bring the server back (orchestrator/server_fate.py). Teardown's stop-engine asks the same question
(server_state) before it connects.
"""

from __future__ import annotations

from collections.abc import Generator

from orchestrator.actions import Action, Result
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import ProviderError, StateError
from orchestrator.providers.base import ServerNotFound
from orchestrator.server_fate import NOT_RUNNING, not_running


def server_state(ctx: StepContext, uuid: str) -> Generator[Action, Result, str | None]:
    """The server's state as the provider says it now, "gone" when it no longer knows the server, None in a dry
    run. Raises the provider's error when it could not be asked (credentials, API down)."""
    show = ctx.provider.show(uuid, "is the server running")
    r = yield show.action
    if not r.known:
        return None
    try:
        return show.parse(r).state
    except ServerNotFound:
        return "gone"


def server_running(ctx: StepContext) -> StepGen:
    srv = ctx.dep.server
    if srv is None:
        raise StateError(f"deployment {ctx.cfg.name} has no server recorded", "deploy it first")
    state = yield from server_state(ctx, srv.uuid)
    if state is None:
        return None
    if state in NOT_RUNNING:
        what, remedy = not_running(state, ctx.cfg.name, ctx.dep.config_path, replica=ctx.replica is not None)
        raise ProviderError(f"server {srv.uuid}: {what}", remedy)
    return f"server {srv.uuid} is {state}"
