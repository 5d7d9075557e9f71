"""Fleets (config `replicas: N`): N servers deployed, redeployed and torn down as one deployment.

Every replica runs the command's playbooks (the single-server steps, unchanged) against its own view of the
fleet's document (fleet_state.py), with its own executor (its own SSH session) and Runner: in threads, at most
`parallel` at once; a dry run plans them one after another. Then the fleet's own steps run once: one scrape job
whose targets are the replicas that are serving (deploy, redeploy), or the scrape job's removal and the record's
(teardown, once every server is confirmed gone).

- deploy with a changed N: replicas above N are torn down first (the highest-numbered), new indices are added;
- redeploy is rolling: one replica at a time, each healthy again before the next; the first failure stops it;
- a replica that fails is named in the summary with its error; `--teardown-on-failure` removes only the failed
  ones; the others stay deployed and in the scrape job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from orchestrator import known_hosts
from orchestrator.actions import Action, Result
from orchestrator.cluster_run import (
    ENGINE_KINDS,
    delete_network_book,
    down_book,
    leave_book,
    network_book,
    redeploy_cluster,
    run_cluster_steps,
    up_book,
)
from orchestrator.commands.specs import CommandSpec
from orchestrator.config import DeploymentConfig
from orchestrator.context import StepContext
from orchestrator.errors import Interrupted, OrchestratorError, TeardownIncomplete
from orchestrator.fleet_report import ReplicaOutcome, fleet_summary, replica_reporter
from orchestrator.fleet_state import Fleet, ReplicaContext, label, replica_config
from orchestrator.playbook import Playbook, PlaybookStep, load_playbook
from orchestrator.progress import ProgressReporter
from orchestrator.runner import Runner, StepOutcome
from orchestrator.shared_reads import SHARED_READS, SharedReads
from orchestrator.state import Deployment, ReplicaRecord
from orchestrator.steps.monitoring import EXPORTERS_ONLY, FLEET_IPS
from orchestrator.transports.base import Executor

FLEET_KINDS = frozenset({"unmonitor", "forget"})  # teardown steps that run once, for the fleet
PRELOAD = (
    "orchestrator.transports.live",
    "orchestrator.transports.ssh",
    "orchestrator.health",
    "orchestrator.hostprep",
    "orchestrator.mlstack",
    "orchestrator.failures",
    "paramiko",
    "httpx",
)  # imported before the threads start: threads importing the same modules at once can deadlock


@dataclass
class FleetRun:
    spec: CommandSpec
    cfg: DeploymentConfig
    config_path: str
    ctx: StepContext  # the fleet's: its document, the store, secrets, the owner fact
    books: list[Playbook]
    reporter: ProgressReporter
    executor: Executor  # the fleet's own steps' (local files: the scrape config, known_hosts)
    dry_run: bool
    teardown_on_failure: bool
    lock: threading.Lock = field(default_factory=threading.Lock)  # one output line at a time
    reporters: list[ProgressReporter] = field(default_factory=list)
    cancel: threading.Event = field(
        default_factory=threading.Event
    )  # set by Ctrl-C: replicas stop at their next action

    @property
    def fleet_facts(self) -> dict[str, object]:
        return self.ctx.facts


def run_fleet(run: FleetRun) -> None:
    """The command for a fleet; raises the failure (after the summary), as session.run_playbooks does."""
    ctx, spec, cfg = run.ctx, run.spec, run.cfg
    fleet = Fleet(ctx.dep, ctx.store)
    results: list[ReplicaOutcome] = []
    fleet_outcomes: list[StepOutcome] = []
    failure: OrchestratorError | None = None
    ctx.facts.setdefault(SHARED_READS, SharedReads())  # the catalogue, read once for every replica
    try:
        if fleet.adopt_single():
            run.reporter.info(f"{cfg.name} becomes a fleet of {cfg.servers}: its server is replica 1")
        if not run.dry_run:
            ctx.dep.status = spec.status_running
            fleet.save()
        if spec.removes:
            if cfg.cluster is not None:
                fleet_outcomes += _best_effort(run, down_book())
            results = _teardown(run, fleet, list(ctx.dep.replicas), "deleted")
            left = [r for r in results if r.error is not None]
            if left:
                raise _teardown_failure(run, left)
            if cfg.cluster is not None:  # no server is attached any more: the network can go
                fleet_outcomes += _cluster_steps(run, delete_network_book())
            fleet_outcomes += _fleet_steps(run, [s for s in _teardown_book(run).steps if s.kind in FLEET_KINDS], {})
        else:
            fleet_outcomes = _deploy_fleet(run, fleet, results)
    except OrchestratorError as exc:
        failure = exc
    finally:
        run.executor.close()
    if failure is None and run.cancel.is_set():
        stopped = ", ".join(label(r.index) for r in results if isinstance(r.error, Interrupted)) or "the fleet"
        failure = Interrupted(f"interrupted: {stopped} stopped")
        failure.hint = f"resume: orchestrator {spec.name} {run.config_path}{spec.resume_flags}\n" + (
            f"remove it: orchestrator teardown {cfg.name} --yes" if not spec.removes else ""
        )
    if failure is None and not spec.removes:
        failure = _replica_failure(run, results)
    if not run.dry_run and store_has(ctx):
        ctx.dep.status = "failed" if failure is not None else (spec.status_done or ctx.dep.status)
        if failure is None:
            ctx.dep.last_error = None
        fleet.save()
        if spec.writes_run_metrics:
            from orchestrator.session import _write_run_metrics

            _write_run_metrics(ctx, spec.name, _merged(results, fleet_outcomes), failure is None)
    actions = run.reporter.counter + sum(r.counter for r in run.reporters)
    fleet_summary(run.reporter, spec.name, ctx.dep, results, fleet_outcomes, failure, actions)
    if failure is not None:
        raise failure


def _cluster_steps(run: FleetRun, book: Playbook) -> list[StepOutcome]:
    """A cluster's own steps, once, with the fleet's document; each node's actions on its own SSH session."""
    from orchestrator.transports.live import LiveExecutor

    def make() -> Executor:
        return LiveExecutor(run.ctx.secrets, notify=run.reporter.info, feed=run.reporter)

    return run_cluster_steps(book, run.ctx, run.executor, run.reporter, make)


def _best_effort(run: FleetRun, book: Playbook) -> list[StepOutcome]:
    """Ray stopped before servers go (ray-down, ray-leave): a failure is reported, the servers deleted anyway."""
    try:
        return _cluster_steps(run, book)
    except OrchestratorError as exc:
        kind = book.steps[0].kind
        run.reporter.info(f"{kind} failed ({exc.message}); deleting the servers stops Ray with them")
        return []


def store_has(ctx: StepContext) -> bool:
    return ctx.store is not None and ctx.store.load(ctx.cfg.name) is not None


def _deploy_fleet(run: FleetRun, fleet: Fleet, results: list[ReplicaOutcome]) -> list[StepOutcome]:
    """Scale down, deploy every replica, remove failed ones if asked, write the scrape job; ``results`` gets each
    replica's outcome as it is known (a failure of the fleet's own step still reports them)."""
    cfg = run.cfg
    size = cfg.servers
    if cfg.cluster is not None and run.spec.rolling:  # servers and Ray kept: the Serve app updated in place
        return redeploy_cluster(run.spec, run.ctx, run.config_path, partial(_cluster_steps, run))
    extra = sorted((r for r in fleet.dep.replicas if r.index > size), key=lambda r: -r.index)
    outcomes: list[StepOutcome] = []
    if extra:
        run.reporter.info(f"scaling down to {size}: removing {', '.join(label(r.index) for r in extra)}")
        if cfg.cluster is not None:  # they leave Ray first: the head sees them go, not their health checks fail
            outcomes += _best_effort(run, leave_book())
        removed = _teardown(run, fleet, extra, "removed (scaled down)")
        results += removed
        left = [r for r in removed if r.error is not None]
        if left:
            raise _teardown_failure(run, left)
    if cfg.cluster is not None:  # the private network first: every server is created attached to it
        outcomes += _cluster_steps(run, network_book())
    wanted = [fleet.record(i) for i in range(1, size + 1)]
    deployed = _deploy(run, fleet, wanted)
    results += deployed
    if run.cancel.is_set():
        return outcomes  # interrupted: nothing more is changed (the resume hint says how to go on)
    failed = [fleet_record(fleet, r.index) for r in deployed if r.error is not None]
    if failed and run.teardown_on_failure and not run.dry_run:
        names = ", ".join(label(r.index) for r in failed if r is not None)
        run.reporter.info(f"--teardown-on-failure: removing the failed replica(s) {names}")
        gone = _teardown(run, fleet, [r for r in failed if r is not None], "")
        for r in deployed:
            done = next((g for g in gone if g.index == r.index), None)
            if done is not None:
                why = f"NOT deleted: {done.error.message}" if done.error is not None else ""
                r.note = why or "deleted (--teardown-on-failure)"
    if cfg.cluster is not None:
        if failed:
            return outcomes  # no cluster without every node: the summary names the failed ones
        return outcomes + _cluster_steps(run, up_book(cfg))
    monitoring = [s for s in run.books[-1].steps if s.kind == "monitoring"]
    ips = _scrape_ips(run, fleet, {r.index for r in deployed if r.error is None})
    if not monitoring or not ips:
        return []  # no replica has a server left: nothing to scrape, the job is left as it was
    return _fleet_steps(run, monitoring, {FLEET_IPS: ips})


def _scrape_ips(run: FleetRun, fleet: Fleet, ok: set[int]) -> list[str]:
    """The fleet's scrape targets: the replicas serving; with none serving, every replica that still has a server
    (the whole service is down: Prometheus keeps watching them, so its engine-down alerts fire, and no longer
    scrapes the servers this run deleted)."""
    serving = [ip for ip in (_scrape_ip(run, rec) for rec in fleet.dep.replicas if rec.index in ok) if ip]
    if serving:
        return serving
    kept = [ip for ip in (_scrape_ip(run, rec) for rec in fleet.dep.replicas if rec.server) if ip]
    if kept:
        run.reporter.info("no replica is serving: the scrape job keeps watching every replica that has a server")
    return kept


def _scrape_ip(run: FleetRun, rec: ReplicaRecord) -> str:
    if run.dry_run:
        return f"<{label(rec.index)}.server.ip>"
    return (rec.server.ip if rec.server else None) or ""


def fleet_record(fleet: Fleet, index: int) -> ReplicaRecord | None:
    return next((r for r in fleet.dep.replicas if r.index == index), None)


def _deploy(run: FleetRun, fleet: Fleet, recs: list[ReplicaRecord]) -> list[ReplicaOutcome]:
    books = [_per_replica(b, run.cfg.cluster is not None) for b in run.books]
    rolling = run.spec.rolling
    if rolling or run.dry_run or run.cfg.parallel == 1 or len(recs) == 1:
        results: list[ReplicaOutcome] = []
        for rec in recs:
            if any(isinstance(r.error, Interrupted) for r in results):
                run.cancel.set()
                break
            if rolling and any(r.error is not None for r in results):
                first = next(r for r in results if r.error is not None)
                results.append(ReplicaOutcome(rec.index, note=f"not redeployed: {label(first.index)} failed first"))
                continue
            results.append(_one(run, fleet, rec, books))
        return results
    return _in_threads(run, [partial(_one, run, fleet, rec, books) for rec in recs])


def _teardown(run: FleetRun, fleet: Fleet, recs: Sequence[ReplicaRecord], note: str) -> list[ReplicaOutcome]:
    book = _per_replica(_teardown_book(run), run.cfg.cluster is not None)
    jobs = [partial(_one, run, fleet, rec, [book], removing=True, note=note) for rec in recs]
    if run.dry_run or len(jobs) <= 1:
        return [job() for job in jobs]
    return _in_threads(run, jobs)


def _teardown_book(run: FleetRun) -> Playbook:
    return next((b for b in run.books if b.name == "teardown"), None) or load_playbook("teardown")


def _per_replica(book: Playbook, cluster: bool = False) -> Playbook:
    """What each replica runs of a playbook: all but the steps that run once for the fleet (and, on a cluster's
    node, the single-server engine's: the Ray app is the engine)."""
    skip = FLEET_KINDS | ENGINE_KINDS if cluster else FLEET_KINDS
    steps = [s for s in book.steps if s.kind not in skip]
    return book if len(steps) == len(book.steps) else book.model_copy(update={"steps": steps})


def _in_threads(run: FleetRun, jobs: Sequence[Callable[[], ReplicaOutcome]]) -> list[ReplicaOutcome]:
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)
    workers = max(1, min(run.cfg.parallel, len(jobs)))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="replica")
    futures = [pool.submit(job) for job in jobs]
    try:
        try:
            return [f.result() for f in futures]
        except KeyboardInterrupt:
            # Ctrl-C reaches this thread only: every replica stops at its next action, after recording what its
            # running action made; replicas not started yet do not start.
            run.cancel.set()
            run.reporter.info("interrupt received: each replica stops after its running action is recorded")
            return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True)


def _one(
    run: FleetRun,
    fleet: Fleet,
    rec: ReplicaRecord,
    books: list[Playbook],
    *,
    removing: bool = False,
    note: str = "",
) -> ReplicaOutcome:
    """One replica's run of ``books``, with its own reporter, executor (SSH session) and Runner."""
    from orchestrator.transports.live import LiveExecutor
    from orchestrator.transports.recording import RecordingExecutor

    index, ctx, spec = rec.index, run.ctx, run.spec
    reporter = replica_reporter(run.reporter, index, run.lock, run.cancel)
    with run.lock:
        run.reporters.append(reporter)
    executor: Executor = (
        RecordingExecutor() if run.dry_run else LiveExecutor(ctx.secrets, notify=reporter.info, feed=reporter)
    )
    rctx = ReplicaContext(
        cfg=replica_config(run.cfg, index),
        dep=fleet.view(rec),
        store=ctx.store,
        secrets=ctx.secrets,
        notify=reporter.info,
        facts={**ctx.facts, EXPORTERS_ONLY: True},
        replica=index,
        fleet=fleet,
        record=rec,
    )
    runner = Runner(executor, reporter)
    out = ReplicaOutcome(index)
    since = fleet.billing_since(rec) if removing else None
    if not run.dry_run:
        fleet.set_status(rec, "tearing-down" if removing else spec.status_running)
    try:
        for book in books:
            if book.name == spec.fresh_record_before:
                rctx.dep = Deployment(name=ctx.dep.name, config_path=ctx.dep.config_path, config=ctx.dep.config)
                rctx.save()
            runner.run(book, rctx)
        if removing:
            if index > 1:  # replica 1's pinned key is filed under the deployment's name: `forget` removes it
                _drive(known_hosts.forget(rctx.host_name), executor, reporter)
            out.note = note
            if not run.dry_run:
                fleet.drop(rec, since)
        elif not run.dry_run:
            fleet.set_status(rec, "deployed")
    except OrchestratorError as exc:
        out.error = exc
    except Exception as exc:  # noqa: BLE001 - one replica's bug must not hide what the others did
        out.error = OrchestratorError(f"unexpected {type(exc).__name__}: {exc}")
    finally:
        executor.close()
        out.outcomes = list(runner.outcomes)
        out.found_gone = rctx.found_gone
    if out.error is not None and not run.dry_run:
        fleet.set_status(rec, "failed")
    return out


def _drive(gen: Generator[Action, Result, None], executor: Executor, reporter: ProgressReporter) -> None:
    try:
        action = next(gen)
        while True:
            reporter.action(action)
            action = gen.send(executor.execute(action))
    except StopIteration:
        return
    finally:
        gen.close()


def _fleet_steps(run: FleetRun, steps: list[PlaybookStep], facts: dict[str, object]) -> list[StepOutcome]:
    if not steps:
        return []
    run.ctx.facts.update(facts)
    name = run.books[-1].name
    return Runner(run.executor, run.reporter).run(Playbook(name=name, steps=steps), run.ctx)


def _teardown_failure(run: FleetRun, left: list[ReplicaOutcome]) -> TeardownIncomplete:
    names = ", ".join(label(r.index) for r in left)
    why = "; ".join(f"{label(r.index)}: {r.error.message}" for r in left if r.error is not None)
    net = run.ctx.dep.network
    also = f"; private network {net.uuid} remains too (deleted once no server is attached)" if net else ""
    return TeardownIncomplete(
        f"{len(left)} replica(s) remain ({names}): {why}{also}",
        f"their servers may be billing: retry `orchestrator teardown {run.cfg.name} --yes` (the record keeps them)",
    )


def _replica_failure(run: FleetRun, results: list[ReplicaOutcome]) -> OrchestratorError | None:
    """The first failed replica's error (its type sets the exit code), naming every failed replica and what
    became of the others."""
    bad = [r for r in results if r.error is not None]
    if not bad:
        return None
    first = bad[0].error
    assert first is not None
    good = [label(r.index) for r in results if r.error is None and not r.note]
    first.message = (
        f"{len(bad)} of {run.cfg.servers} replica(s) failed ({', '.join(label(r.index) for r in bad)}); "
        f"{label(bad[0].index)}: {first.message}"
    )
    lines = [first.hint] if first.hint else []
    lines += [f"{label(r.index)} failed too: {r.error.message}" for r in bad[1:] if r.error is not None]
    for r in bad:
        rec = next((x for x in run.ctx.dep.replicas if x.index == r.index), None)
        if r.note:
            lines.append(f"{label(r.index)}: {r.note}")
        elif rec is not None and rec.server is not None:
            lines.append(
                f"{label(r.index)}: server {rec.server.uuid} ({rec.server.ip or 'no ip'}) was KEPT for debugging "
                "and is billing by the hour"
            )
    if good:
        lines.append(f"still serving: {', '.join(good)}")
    lines.append(f"resume: orchestrator {run.spec.name} {run.config_path}{run.spec.resume_flags}")
    lines.append(f"remove it: orchestrator teardown {run.cfg.name} --yes")
    first.hint = "\n".join(lines)
    return first


def _merged(results: list[ReplicaOutcome], fleet_outcomes: list[StepOutcome]) -> list[StepOutcome]:
    """One timing per step kind for the run-metrics textfile: the slowest replica's; failed if any failed."""
    merged: dict[str, StepOutcome] = {}
    for o in [o for r in results for o in r.outcomes] + fleet_outcomes:
        seen = merged.get(o.kind)
        if seen is None:
            merged[o.kind] = StepOutcome(o.kind, o.status, o.seconds)
            continue
        seen.seconds = max(seen.seconds, o.seconds)
        if o.status != "ok":
            seen.status = o.status
    return list(merged.values())
