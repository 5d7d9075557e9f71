"""A recorded server that the cloud says is not running: what it means and what brings it back.

One wording for `status` (its live engine line), `extend` (the server-running step) and anything else that finds a
server stopped (its auto-stop timer, or by hand) or gone (deleted outside orchestrator). GPU plans bill only while
started, so neither bills for its plan. Light on purpose: `status` imports it on its fast path.
"""

from __future__ import annotations

NOT_RUNNING = ("stopped", "gone")  # server states (upctl's, and "gone" for a server it no longer knows)


def not_running(state: str, name: str, config: str, *, replica: bool = False) -> tuple[str, str]:
    """(what it is, what brings it back) for a server in one of NOT_RUNNING; ``config``: the config file's path;
    ``replica``: the server is one of a fleet's (a teardown would remove them all, so it is not offered)."""
    config = config or "CONFIG"
    if state == "stopped":
        what, back = "the server is stopped (its auto-stop timer, or stopped by hand)", "starts it again"
        drop = f"`orchestrator teardown {name} --yes` removes it"
    else:
        what, back = "the server is gone (deleted outside orchestrator)", "creates a new one"
        drop = f"`orchestrator teardown {name} --yes` forgets it"
    if replica:
        return what, f"`orchestrator deploy {config}` {back} (the fleet's other replicas are kept as they are)"
    return what, f"`orchestrator deploy {config}` {back}; {drop}"
