"""`status --orphans` and `teardown --orphans`: the scan for untracked servers with our labels, run through an
executor (live, or recording for --dry-run), its report (text or JSON), and the deletion of what it found."""

from __future__ import annotations

import json
from collections.abc import Generator

from orchestrator.actions import Action, Result
from orchestrator.config import DeploymentConfig
from orchestrator.console import Console, confirm, guard
from orchestrator.context import StepContext, default_provider
from orchestrator.errors import OrchestratorError, TeardownIncomplete
from orchestrator.orphans import Scan, orphan_json, orphan_rows, scan
from orchestrator.owner import Owner, load_owner
from orchestrator.playbook import Playbook, PlaybookStep
from orchestrator.progress import ProgressReporter
from orchestrator.runner import Runner, StepOutcome
from orchestrator.state import Deployment, ServerRecord, StateStore
from orchestrator.transports.base import Executor


def _drive_scan(gen: Generator[Action, Result, Scan], executor: Executor, reporter: ProgressReporter | None) -> Scan:
    """Run the orphan scan's actions through the executor (live, or recording for --dry-run)."""
    try:
        action = next(gen)
        while True:
            if reporter is not None:
                reporter.action(action)
            action = gen.send(executor.execute(action))
    except StopIteration as stop:
        assert isinstance(stop.value, Scan)
        return stop.value
    finally:
        gen.close()


def find_orphans(
    executor: Executor | None = None, reporter: ProgressReporter | None = None
) -> tuple[Owner | None, Scan]:
    """This installation's owner (None before its first server) and the untracked servers with our labels."""
    from orchestrator.transports.live import LiveExecutor

    owner = load_owner()
    ex: Executor = executor if executor is not None else LiveExecutor({})
    try:
        found = _drive_scan(scan(default_provider(), StateStore().all(), owner.id if owner else None), ex, reporter)
    finally:
        if executor is None:
            ex.close()
    return owner, found


def orphans_document(owner: Owner | None, found: Scan) -> dict[str, object]:
    return {
        "owner": owner.as_json() if owner else None,
        "orphans": [orphan_json(o) for o in found.orphans],
        "foreign": [orphan_json(o) for o in found.foreign],
    }


def describe_orphans(console: Console, owner: Owner | None, found: Scan) -> None:
    who = f"owner {owner.name} (id {owner.id})" if owner else "this installation (no owner id yet: no server made)"
    if not found.orphans:
        console.out(f"no orphaned servers: every server of {who} is tracked in local state")
    else:
        console.out(f"orphaned servers of {who}:")
        for line in orphan_rows(found.orphans):
            console.out("  " + line)
        console.out(f"{len(found.orphans)} orphaned server(s); remove them with `orchestrator teardown --orphans`")
    if found.foreign:
        console.out("servers of other owners, or without an owner label (never touched by `teardown --orphans`):")
        for line in orphan_rows(found.foreign):
            console.out("  " + line)
        console.out(
            f"{len(found.foreign)} foreign server(s); only if you know they are unused: "
            "`orchestrator teardown --orphans --include-foreign`"
        )


def teardown_orphans(
    *, yes: bool, dry_run: bool, debug: bool, as_json: bool = False, include_foreign: bool = False
) -> None:
    from orchestrator.transports.live import LiveExecutor
    from orchestrator.transports.recording import RecordingExecutor

    with guard(debug, as_json=as_json) as console:
        reporter = ProgressReporter(console, dry_run=dry_run, as_json=as_json)
        executor: Executor = RecordingExecutor() if dry_run else LiveExecutor({}, notify=reporter.info, feed=reporter)
        doc = console.report  # a failure's JSON object carries what was done so far
        doc.update({"command": "teardown --orphans", "dry_run": dry_run, "include_foreign": include_foreign})
        try:
            _teardown_orphans(console, reporter, executor, doc, yes=yes, dry_run=dry_run, include=include_foreign)
        finally:
            executor.close()
        if as_json:
            final = {**doc, "ok": True}
            console.out(json.dumps(final, indent=2))
            if reporter.events is not None:  # the progress events end as a playbook command's do
                reporter.events.emit("summary", document=final)


def _teardown_orphans(
    console: Console,
    reporter: ProgressReporter,
    executor: Executor,
    doc: dict[str, object],
    *,
    yes: bool,
    dry_run: bool,
    include: bool,
) -> None:
    text = not reporter.as_json
    if dry_run and text:
        console.out(
            "Dry run of `teardown --orphans`: nothing will be changed, no credentials are used. "
            "Values not known yet appear as <placeholders>."
        )
    reporter.step_started(1, 1, "find-orphans")
    owner, found = find_orphans(executor, reporter)
    note = f"{len(found.orphans)} orphan(s) of this owner, {len(found.foreign)} foreign server(s)"
    reporter.step_finished(1, 1, StepOutcome("find-orphans", "ok", 0.0, "" if not found.known else note))
    doc.update(orphans_document(owner, found))
    if text:
        describe_orphans(console, owner, found)
    targets = list(found.orphans) + (list(found.foreign) if include else [])
    if not targets:
        return
    if not (yes or dry_run):
        if found.orphans:
            confirm(f"Delete these {len(found.orphans)} orphaned server(s) of this owner and their storages?")
        if include and found.foreign:
            confirm(
                f"ALSO delete {len(found.foreign)} server(s) of OTHER owners (or without an owner label), "
                "which someone else may be using?"
            )
    left: list[str] = []
    results: dict[str, str] = {}
    book = Playbook(name="teardown-orphan", steps=[PlaybookStep(kind="destroy-server", retries=2)])
    for o in targets:
        name = o.server.deployment if o.server.deployment and len(o.server.deployment) > 1 else "orphan"
        try:
            cfg = DeploymentConfig.model_validate({"name": name, "engine": {"model": "unknown"}})
        except ValueError:
            cfg = DeploymentConfig.model_validate({"name": "orphan", "engine": {"model": "unknown"}})
        dep = Deployment(name=cfg.name, config_path="", server=ServerRecord(uuid=o.server.uuid))
        ctx = StepContext(cfg=cfg, dep=dep, store=None, notify=reporter.info)
        try:
            Runner(executor, reporter).run(book, ctx)
            results[o.server.uuid] = "would delete" if dry_run else "deleted"
        except OrchestratorError as exc:
            left.append(f"{o.server.uuid} ({exc.message})")
            results[o.server.uuid] = f"failed: {exc.message}"
    for key in ("orphans", "foreign"):
        entries = doc.get(key)
        for entry in entries if isinstance(entries, list) else []:
            entry["result"] = results.get(str(entry["uuid"]), "kept")
    if left:
        raise TeardownIncomplete(
            f"{len(left)} orphaned server(s) remain: {'; '.join(left)}",
            "retry `orchestrator teardown --orphans`, or delete them with upctl",
        )
    if dry_run:
        if text:
            console.out(f"Dry run complete: {reporter.counter} actions; nothing was changed.")
        return
    mine = sum(1 for o in found.orphans if results.get(o.server.uuid) == "deleted")
    theirs = len(targets) - len(found.orphans)
    if text:
        console.out(
            f"{mine} orphaned server(s) deleted and confirmed gone"
            + (f"; {theirs} foreign server(s) deleted and confirmed gone (--include-foreign)" if theirs else "")
        )
