"""One command's run: lock, state record, secrets, executor (live or recording), runner, and the failure report."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

from orchestrator.config import DeploymentConfig
from orchestrator.console import Console, confirm, guard
from orchestrator.context import StepContext, upctl_binary
from orchestrator.errors import ConfigError, Interrupted, OrchestratorError, StateError, TeardownIncomplete
from orchestrator.orphans import Orphan, orphan_rows
from orchestrator.orphans import find_orphans as _find
from orchestrator.playbook import Playbook, PlaybookStep, load_playbook
from orchestrator.progress import ProgressReporter
from orchestrator.providers.upctl import UpctlCommands
from orchestrator.run_metrics import StepTiming, render_run_metrics, textfile_name, write_textfile
from orchestrator.runner import Runner, StepOutcome
from orchestrator.secrets import API_KEY, load_secrets
from orchestrator.state import Deployment, ServerRecord, StateStore
from orchestrator.transports.base import Executor
from orchestrator.transports.live import LiveExecutor
from orchestrator.transports.local import run_local
from orchestrator.transports.recording import RecordingExecutor

PLANNED_API_KEY = "planned-key-generated-on-the-first-real-run"  # as long as a generated key (43 characters)


def run_playbooks(
    playbooks: list[str],
    cfg: DeploymentConfig,
    config_path: str,
    *,
    dry_run: bool,
    as_json: bool,
    debug: bool,
    command: str,
    existing_required: bool = False,
    teardown_on_failure: bool = False,
) -> None:

    with guard(debug):
        secrets, secrets_note = load_secrets(cfg, create_api_key=not dry_run and command != "teardown")
    if dry_run and command != "teardown" and getattr(cfg.engine, "api_key_env", None) and API_KEY not in secrets:
        # A real run generates the key here; plan with a stand-in of the same length, so the dry run sends the
        # same Bearer header and uploads the same files as the real run.
        secrets[API_KEY] = PLANNED_API_KEY
    console = Console(secrets, verbose=debug or dry_run)
    with guard(debug, console), contextlib.ExitStack() as stack:
        books = [load_playbook(p) for p in playbooks]
        store = StateStore()
        if not dry_run:
            stack.enter_context(store.lock(cfg.name, command))
        dep = store.load(cfg.name)
        if existing_required and dep is None:
            raise StateError(
                f"no deployment named {cfg.name!r} in {store.dir}",
                f"deploy it first: orchestrator deploy {config_path}",
            )
        if dep is None:
            dep = Deployment(name=cfg.name, config_path=str(Path(config_path).resolve()))
        dep.config = cfg.model_dump(mode="json")
        if not dry_run:
            _preflight(cfg)
        reporter = ProgressReporter(console, dry_run=dry_run, as_json=as_json)
        if dry_run:
            from orchestrator.transports.recording import RecordingExecutor

            executor: Executor = RecordingExecutor()
            if not as_json:
                console.out(
                    f"Dry run of `{command}` for deployment {cfg.name} ({config_path}): nothing will be "
                    "changed, no credentials are used. Values not known yet appear as <placeholders>."
                )
        else:
            from orchestrator.transports.live import LiveExecutor

            executor = LiveExecutor(secrets, notify=reporter.info)
            if command != "teardown":
                if secrets_note:
                    reporter.info(secrets_note)
                elif "engine_api_key" not in secrets and cfg.engine.kind == "vllm":
                    reporter.info(
                        "warning: engine.api_key_env is null: the engine API accepts requests from "
                        "anyone who can reach its port"
                    )
        ctx = StepContext(cfg=cfg, dep=dep, store=None if dry_run else store, secrets=secrets, notify=reporter.info)
        if command == "redeploy":
            ctx.facts["restart"] = True  # redeploy means: restart the engine with the current config
        runner = Runner(executor, reporter)
        outcomes: list[StepOutcome] = []
        failure: OrchestratorError | None = None
        try:
            if not dry_run:
                dep.status = "tearing-down" if command == "teardown" else "deploying"
                ctx.save()
            for book in books:
                if book.name == "deploy" and command == "redeploy":
                    ctx.dep = dep = Deployment(name=cfg.name, config_path=dep.config_path, config=dep.config)
                    ctx.save()
                outcomes += runner.run(book, ctx)
            if not dry_run and command != "teardown":
                dep.status, dep.last_error = "deployed", None
                ctx.save()
        except OrchestratorError as exc:
            failure = exc
            outcomes = runner.outcomes
            if not dry_run and store.load(cfg.name) is not None:
                dep.status = "failed"
                ctx.save()
        finally:
            executor.close()
        if not dry_run and command != "teardown":
            _write_run_metrics(ctx, command, outcomes, failure is None)
        reporter.summary(command, ctx, outcomes, failure)
        if failure is not None:
            raise _explain_failure(failure, command, config_path, cfg, ctx, teardown_on_failure, dry_run, reporter)


def _explain_failure(
    failure: OrchestratorError,
    command: str,
    config_path: str,
    cfg: DeploymentConfig,
    ctx: StepContext,
    teardown_on_failure: bool,
    dry_run: bool,
    reporter: ProgressReporter,
) -> OrchestratorError:
    """Say what is left and what to do: nothing may be left billing without the user knowing."""

    dep = ctx.dep
    if command == "teardown" and not isinstance(failure, (TeardownIncomplete, Interrupted, StateError)):
        where = f"server {dep.server.uuid} still exists" if dep.server else "the local record remains"
        failure = TeardownIncomplete(
            f"teardown incomplete: {failure.message} ({where})", failure.hint, details=failure.details
        )
    extra: list[str] = []
    if command != "teardown" and dep.server is not None and not dry_run:
        if teardown_on_failure and not isinstance(failure, Interrupted):
            reporter.info(f"--teardown-on-failure: removing server {dep.server.uuid}")
            removed = _teardown_after_failure(ctx, reporter)
            extra.append(
                f"server {dep.server.uuid} was deleted (--teardown-on-failure)"
                if removed
                else f"server {dep.server.uuid} could NOT be deleted and is billing: "
                f"orchestrator teardown {cfg.name} --yes"
            )
            if removed:
                failure.hint = "\n".join(([failure.hint] if failure.hint else []) + extra)
                return failure
        else:
            extra.append(
                f"server {dep.server.uuid} ({dep.server.plan}, {dep.server.ip or 'no ip'}) was KEPT for "
                "debugging and is billing by the hour"
            )
    if isinstance(failure, Interrupted) or extra:
        again = f"orchestrator {command} {config_path}" + (" --yes" if command == "teardown" else "")
        extra.append(f"resume: {again}")
        if command != "teardown":
            extra.append(f"remove it: orchestrator teardown {cfg.name} --yes")
    if extra:
        failure.hint = "\n".join(([failure.hint] if failure.hint else []) + extra)
    return failure


def _teardown_after_failure(ctx: StepContext, reporter: ProgressReporter) -> bool:

    executor = LiveExecutor(ctx.secrets, notify=reporter.info)
    try:
        Runner(executor, reporter).run(load_playbook("teardown"), ctx)
    except OrchestratorError as exc:
        reporter.info(f"teardown after failure failed: {exc.message}")
        return False
    finally:
        executor.close()
    return True


def _preflight(cfg: DeploymentConfig) -> None:
    """Checks that need no network, before anything is created."""

    key = cfg.ssh.private_key_path
    if not key.is_file():
        raise ConfigError(
            f"SSH private key not found: {key}",
            "create one with ssh-keygen -t ed25519, or set ssh.private_key",
            field="ssh.private_key",
        )
    if not cfg.ssh.public_key_path.is_file():
        raise ConfigError(
            f"SSH public key not found: {cfg.ssh.public_key_path}",
            "set ssh.public_key, or put the .pub file next to the private key",
            field="ssh.public_key",
        )


def _write_run_metrics(ctx: StepContext, command: str, outcomes: Sequence[StepOutcome], ok: bool) -> None:

    m = ctx.cfg.monitoring
    if not m.run_metrics or not m.prometheus_config:
        return
    path = Path(m.prometheus_config).expanduser().parent / textfile_name(ctx.cfg.name, command)
    steps = [StepTiming(o.kind, o.seconds, o.status) for o in outcomes]
    healthy = ctx.facts.get("time_to_healthy")
    text = render_run_metrics(
        ctx.cfg.name,
        command,
        "ok" if ok else "failed",
        steps,
        healthy if isinstance(healthy, float) else None,
        time.time(),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_textfile(path, text)
    except Exception as exc:  # noqa: BLE001 - metrics must never fail a run
        ctx.notify(f"warning: run metrics not written: {exc}")
        return
    if ctx.store is not None and ctx.store.load(ctx.cfg.name) is not None:
        ctx.dep.monitoring.run_metrics = str(path)
        ctx.save()


def find_orphans() -> list[Orphan]:

    return _find(UpctlCommands(upctl_binary()), lambda argv: run_local(argv, 120), StateStore().all())


def teardown_orphans(*, yes: bool, dry_run: bool, debug: bool) -> None:

    with guard(debug) as console:
        orphans = find_orphans()
        if not orphans:
            console.out("no orphaned servers: every server with our labels is tracked in local state")
            return
        for line in orphan_rows(orphans):
            console.out(line)
        if not (yes or dry_run):
            confirm(f"Delete these {len(orphans)} server(s) and their storages?")
        left: list[str] = []
        book = Playbook(name="teardown-orphan", steps=[PlaybookStep(kind="destroy-server", retries=2)])
        for o in orphans:
            name = o.server.deployment if o.server.deployment and len(o.server.deployment) > 1 else "orphan"
            try:
                cfg = DeploymentConfig.model_validate({"name": name, "engine": {"model": "unknown"}})
            except ValueError:
                cfg = DeploymentConfig.model_validate({"name": "orphan", "engine": {"model": "unknown"}})
            dep = Deployment(name=cfg.name, config_path="", server=ServerRecord(uuid=o.server.uuid))
            reporter = ProgressReporter(console, dry_run=dry_run, as_json=False)
            executor: Executor = RecordingExecutor() if dry_run else LiveExecutor({}, notify=reporter.info)
            ctx = StepContext(cfg=cfg, dep=dep, store=None, notify=reporter.info)
            try:
                Runner(executor, reporter).run(book, ctx)
            except OrchestratorError as exc:
                left.append(f"{o.server.uuid} ({exc.message})")
            finally:
                executor.close()
        if left:
            raise TeardownIncomplete(
                f"{len(left)} orphaned server(s) remain: {'; '.join(left)}",
                "retry `orchestrator teardown --orphans`, or delete them with upctl",
            )
        if not dry_run:
            console.out(f"{len(orphans)} orphaned server(s) deleted and confirmed gone")
