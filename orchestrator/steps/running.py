"""server-running: the recorded server is started, asked of the cloud before anything connects to it.

`extend` runs it first: a server its auto-stop timer powered off answers no SSH, so connecting would wait out the
connect step's timeout (minutes) and end in an SSH error; this says what happened at once (exit 3), and how to
bring the server back (orchestrator/server_fate.py).
"""

from __future__ import annotations

from orchestrator.context import StepContext, StepGen
from orchestrator.errors import ProviderError, StateError
from orchestrator.providers.base import ServerNotFound
from orchestrator.server_fate import not_running


def server_running(ctx: StepContext) -> StepGen:
    srv = ctx.dep.server
    if srv is None:
        raise StateError(f"deployment {ctx.cfg.name} has no server recorded", "deploy it first")
    show = ctx.provider.show(srv.uuid, "is the server running")
    r = yield show.action
    if not r.known:
        return None
    try:
        state = show.parse(r).state
    except ServerNotFound:
        state = "gone"
    if state in ("stopped", "gone"):
        what, remedy = not_running(state, ctx.cfg.name, ctx.dep.config_path, replica=ctx.replica is not None)
        raise ProviderError(f"server {srv.uuid}: {what}", remedy)
    return f"server {srv.uuid} is {state}"
