"""Orphans: servers of this installation (our labels and owner id) that local state does not track.

Servers that carry our labels but another owner id (a colleague on the same account), or no owner id at all
(made by a version before owner labels), are *foreign*: listed apart, never touched unless asked for explicitly.
The scan is a generator of actions like a step, so ``--dry-run`` records it instead of calling upctl.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

from orchestrator.actions import Action, Result
from orchestrator.providers.base import DEPLOYMENT_LABEL_KEY, OUR_LABEL, OWNER_LABEL_KEY, ServerInfo, ServerNotFound
from orchestrator.providers.provider import Provider
from orchestrator.state import Deployment


@dataclass(frozen=True)
class Orphan:
    server: ServerInfo
    reason: str


@dataclass(frozen=True)
class Scan:
    orphans: list[Orphan] = field(default_factory=list)  # this owner's, untracked: `teardown --orphans` deletes
    foreign: list[Orphan] = field(default_factory=list)  # other owners' or unowned: only with --include-foreign
    known: bool = True  # False in dry-run: the entries are placeholders


def _placeholder(kind: str, owner_id: str) -> ServerInfo:
    return ServerInfo(
        uuid=f"<{kind}.uuid>",
        hostname=f"<{kind}.hostname>",
        title="",
        state=f"<{kind}.state>",
        plan=f"<{kind}.plan>",
        zone=f"<{kind}.zone>",
        labels={OUR_LABEL[0]: OUR_LABEL[1], DEPLOYMENT_LABEL_KEY: f"<{kind}.deployment>", OWNER_LABEL_KEY: owner_id},
    )


def scan(up: Provider, tracked: Sequence[Deployment], owner_id: str | None) -> Generator[Action, Result, Scan]:
    """List every server, read its labels (`server show`), sort the untracked ones of ours by owner."""
    listing = up.list_servers("list every server of the account")
    r = yield listing.action
    if not r.known:
        yield up.show("<server.uuid>", "read the labels of each server that state does not track").action
        return Scan(
            [Orphan(_placeholder("orphan", owner_id or "<owner.id>"), "untracked server of this owner")],
            [Orphan(_placeholder("foreign", "<other.owner.id>"), "another owner's server")],
            known=False,
        )
    summaries = listing.parse(r)
    servers = [d.server for d in tracked] + [r.server for d in tracked for r in d.replicas]
    known = {srv.uuid for srv in servers if srv is not None}
    tracked_names = {d.name for d in tracked}
    found = Scan()
    for summary in summaries:
        if summary.uuid in known:
            continue
        show = up.show(summary.uuid, f"read the labels of {summary.hostname or summary.uuid}")
        try:
            srv = show.parse((yield show.action))
        except ServerNotFound:
            continue  # deleted meanwhile
        if not srv.is_ours:
            continue
        if srv.owned_by(owner_id):
            name = srv.deployment or "?"
            reason = (
                f"deployment {name} tracks another server"
                if name in tracked_names
                else f"deployment {name} is not in local state"
            )
            found.orphans.append(Orphan(srv, reason))
        elif srv.owner is None:
            found.foreign.append(Orphan(srv, "no owner label (an older orchestrator version, or made by hand)"))
        else:
            found.foreign.append(Orphan(srv, f"owner {srv.owner_name or '?'} (id {srv.owner})"))
    return found


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


def orphan_json(o: Orphan) -> dict[str, object]:
    return {
        "uuid": o.server.uuid,
        "hostname": o.server.hostname,
        "deployment": o.server.deployment,
        "owner": o.server.owner,
        "owner_name": o.server.owner_name or None,
        "state": o.server.state,
        "plan": o.server.plan,
        "zone": o.server.zone,
        "reason": o.reason,
    }
