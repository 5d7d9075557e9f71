"""Orphans: servers that carry our labels but that local state does not track (or tracks as another server)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.actions import Result
from orchestrator.providers.base import ServerInfo
from orchestrator.providers.upctl import UpctlCommands
from orchestrator.providers.upctl_errors import ServerNotFound, map_failure
from orchestrator.providers.upctl_parse import parse_server, parse_server_list
from orchestrator.state import Deployment

RunLocal = Callable[[Sequence[str]], Result]


@dataclass(frozen=True)
class Orphan:
    server: ServerInfo
    reason: str


def find_orphans(up: UpctlCommands, run: RunLocal, tracked: Sequence[Deployment]) -> list[Orphan]:
    """List every server, read its labels (`server show`), keep ours that no deployment record points at."""
    argv = up.list_servers()
    r = run(argv)
    if r.rc != 0:
        raise map_failure(argv, r.rc, r.stdout, r.stderr)
    known = {d.server.uuid: d.name for d in tracked if d.server is not None}
    orphans: list[Orphan] = []
    for summary in parse_server_list(r.stdout):
        if summary.uuid in known:
            continue
        show = up.show(summary.uuid)
        detail = run(show)
        if detail.rc != 0:
            err = map_failure(show, detail.rc, detail.stdout, detail.stderr)
            if isinstance(err, ServerNotFound):
                continue  # deleted meanwhile
            raise err
        srv = parse_server(detail.stdout)
        if not srv.is_ours:
            continue
        name = srv.deployment or "?"
        tracked_names = {d.name for d in tracked}
        reason = (
            f"deployment {name} tracks another server"
            if name in tracked_names
            else f"deployment {name} is not in local state"
        )
        orphans.append(Orphan(srv, reason))
    return orphans


def orphan_rows(orphans: Sequence[Orphan]) -> list[str]:
    header = ("SERVER", "HOSTNAME", "DEPLOYMENT", "STATE", "PLAN", "ZONE", "WHY")
    rows = [header] + [
        (
            o.server.uuid,
            o.server.hostname,
            o.server.deployment or "?",
            o.server.state,
            o.server.plan,
            o.server.zone,
            o.reason,
        )
        for o in orphans
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
