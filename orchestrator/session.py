"""One command's run: lock, state record, secrets, executor (live or recording), runner, and the failure report.

What only a real run needs (the live executor and its transports, run metrics) is imported where it is used: a dry
run does not load it (bench/cli_startup.py). The `--orphans` forms are commands/orphans.py's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

from orchestrator.commands.specs import CommandSpec
from orchestrator.config import DeploymentConfig
from orchestrator.console import Console, guard
from orchestrator.context import StepContext
from orchestrator.errors import ConfigError, Interrupted, OrchestratorError, StateError, TeardownIncomplete
from orchestrator.fleet_state import is_fleet
from orchestrator.owner import OWNER_FACT, PLACEHOLDER, ensure_owner, load_owner
from orchestrator.playbook import Playbook, load_playbook
from orchestrator.progress import ProgressReporter
from orchestrator.runner import Runner, StepOutcome
from orchestrator.secrets import API_KEY, load_secrets
from orchestrator.state import Deployment, StateStore
from orchestrator.transports.base import Executor

PLANNED_API_KEY = "planned-key-generated-on-the-first-real-run"  # as long as a generated key (43 characters)


def run_playbooks(
    spec: CommandSpec,
    cfg: DeploymentConfig,
    config_path: str,
    *,
    dry_run: bool,
    as_json: bool,
    debug: bool,
    teardown_on_failure: bool = False,
) -> None:
    """Run the command ``spec`` declares (commands/specs.py): every difference between commands is a field there."""
    command = spec.name
    with guard(debug):
        secrets, secrets_note = load_secrets(cfg, create_api_key=not dry_run and spec.engine_secrets)
    if dry_run and spec.engine_secrets and getattr(cfg.engine, "api_key_env", None) and API_KEY not in secrets:
        # A real run generates the key here; plan with a stand-in of the same length, so the dry run sends the
        # same Bearer header and uploads the same files as the real run.
        secrets[API_KEY] = PLANNED_API_KEY
    console = Console(secrets, verbose=debug or dry_run)
    with guard(debug, console), contextlib.ExitStack() as stack:
        books = [_trimmed(load_playbook(p), spec) for p in spec.playbooks]
        store = StateStore()
        if not dry_run:
            stack.enter_context(store.lock(cfg.name, command))
        dep = store.load(cfg.name)
        if spec.existing_required and dep is None:
            raise StateError(
                f"no deployment named {cfg.name!r} in {store.dir}",
                f"deploy it first: orchestrator deploy {config_path}",
            )
        if dep is None:
            dep = Deployment(name=cfg.name, config_path=str(Path(config_path).resolve()))
        elif Path(config_path).is_file():  # run from a config file (maybe another one): hints name this file
            dep.config_path = str(Path(config_path).resolve())
        dep.config = cfg.model_dump(mode="json")
        if not dry_run:
            _preflight(cfg, spec.strict_preflight, console)
        reporter = ProgressReporter(console, dry_run=dry_run, as_json=as_json)
        if dry_run:
            from orchestrator.transports.recording import RecordingExecutor

            executor: Executor = RecordingExecutor()
            if not as_json:
                console.out(
                    f"Dry run of `{command}` for deployment {cfg.name} ({config_path}): nothing will be "
                    "changed, no credentials are used. Values not known yet appear as <placeholders>."
                )
                if cfg.provider.price_per_hour is not None:
                    from orchestrator.cost import per_hour_text

                    n, each = cfg.servers, cfg.provider.price_per_hour
                    price = per_hour_text(each * n, cfg.provider.currency)
                    servers = f" for {n} servers at {each:.2f} each" if n > 1 else ""
                    console.out(f"Price: {price}{servers} (provider.price_per_hour), billed per started hour.")
        else:
            from orchestrator.transports.live import LiveExecutor

            executor = LiveExecutor(secrets, notify=reporter.info, feed=reporter)
            if spec.engine_secrets:
                if secrets_note:
                    reporter.info(secrets_note)
                elif "engine_api_key" not in secrets and cfg.engine.kind == "vllm":
                    reporter.info(
                        "warning: engine.api_key_env is null: the engine API accepts requests from "
                        "anyone who can reach its port"
                    )
        ctx = StepContext(cfg=cfg, dep=dep, store=None if dry_run else store, secrets=secrets, notify=reporter.info)
        ctx.facts.update(spec.facts)
        if spec.sets_owner:
            # Who we are on the account: new servers carry it; a same-named server of anyone else is a clash.
            ctx.facts[OWNER_FACT] = (load_owner() or PLACEHOLDER) if dry_run else ensure_owner()
        if is_fleet(cfg, dep):  # config `replicas` > 1, or a fleet's record: orchestrator/fleet.py
            from orchestrator.fleet import FleetRun, run_fleet

            run_fleet(FleetRun(spec, cfg, config_path, ctx, books, reporter, executor, dry_run, teardown_on_failure))
            return
        runner = Runner(executor, reporter)
        outcomes: list[StepOutcome] = []
        failure: OrchestratorError | None = None
        try:
            if not dry_run:
                dep.status = spec.status_running
                ctx.save()
            for book in books:
                if book.name == spec.fresh_record_before:
                    ctx.dep = dep = Deployment(name=cfg.name, config_path=dep.config_path, config=dep.config)
                    ctx.save()
                outcomes += runner.run(book, ctx)
            if not dry_run and spec.status_done is not None:
                dep.status, dep.last_error = spec.status_done, None
                ctx.save()
        except OrchestratorError as exc:
            failure = exc
            outcomes = runner.outcomes
            if not dry_run and store.load(cfg.name) is not None:
                dep.status = "failed"
                ctx.save()
        finally:
            executor.close()
        if not dry_run and spec.writes_run_metrics:
            _write_run_metrics(ctx, command, outcomes, failure is None)
        reporter.summary(command, ctx, outcomes, failure)
        if failure is not None:
            raise _explain_failure(failure, spec, config_path, cfg, ctx, teardown_on_failure, dry_run, reporter)


def _trimmed(book: Playbook, spec: CommandSpec) -> Playbook:
    """The playbook without the steps the spec drops (redeploy --recreate keeps the record and its API key)."""
    drop = {kind for name, kind in spec.drop_steps if name == book.name}
    if not drop:
        return book
    return book.model_copy(update={"steps": [s for s in book.steps if s.kind not in drop]})


def _explain_failure(
    failure: OrchestratorError,
    spec: CommandSpec,
    config_path: str,
    cfg: DeploymentConfig,
    ctx: StepContext,
    teardown_on_failure: bool,
    dry_run: bool,
    reporter: ProgressReporter,
) -> OrchestratorError:
    """Say what is left and what to do: nothing may be left billing without the user knowing."""

    dep = ctx.dep
    if spec.removes and not dry_run and not isinstance(failure, (Interrupted, StateError)):
        # The cloud part first: is anything still billing? Then what is left locally.
        where = f"server {dep.server.uuid} still exists (billing)" if dep.server else "server deleted"
        msg = failure.message
        if not isinstance(failure, TeardownIncomplete):
            msg = f"teardown incomplete: {msg}"
        failure = TeardownIncomplete(f"{where}; {msg}", failure.hint, details=failure.details)
    extra: list[str] = []
    if not spec.removes and dep.server is not None and not dry_run:
        if teardown_on_failure and not isinstance(failure, Interrupted):
            uuid = dep.server.uuid
            reporter.info(f"--teardown-on-failure: removing server {uuid}")
            removed = _teardown_after_failure(ctx, reporter)
            extra.append(
                f"server {uuid} was deleted (--teardown-on-failure)"
                if removed
                else f"server {uuid} could NOT be deleted and is billing: orchestrator teardown {cfg.name} --yes"
            )
            if removed and ctx.store is not None and ctx.store.load(cfg.name) is not None:
                extra.append(f"local clean-up incomplete (above); finish it: orchestrator teardown {cfg.name} --yes")
            if removed:
                failure.hint = "\n".join(([failure.hint] if failure.hint else []) + extra)
                return failure
        else:
            extra.append(
                f"server {dep.server.uuid} ({dep.server.plan}, {dep.server.ip or 'no ip'}) was KEPT for "
                "debugging and is billing by the hour"
            )
    if isinstance(failure, Interrupted) or extra:
        extra.append(f"resume: orchestrator {spec.name} {config_path}{spec.resume_flags}")
        if not spec.removes:
            extra.append(f"remove it: orchestrator teardown {cfg.name} --yes")
    if extra:
        failure.hint = "\n".join(([failure.hint] if failure.hint else []) + extra)
    return failure


def _teardown_after_failure(ctx: StepContext, reporter: ProgressReporter) -> bool:
    from orchestrator.transports.live import LiveExecutor

    executor = LiveExecutor(ctx.secrets, notify=reporter.info, feed=reporter)
    try:
        Runner(executor, reporter).run(load_playbook("teardown"), ctx)
    except OrchestratorError as exc:
        reporter.info(f"teardown after failure incomplete: {exc.message}")
        return ctx.dep.server is None  # the server is what bills; local leftovers are reported above
    finally:
        executor.close()
    return True


def _preflight(cfg: DeploymentConfig, strict: bool = True, console: Console | None = None) -> None:
    """Checks that need no network, before anything is created: the firewall's rule count, the key pair, and that
    the key can log in.

    The private key must load (decrypt) or ssh-agent must hold the key matching ssh.public_key. Teardown only
    (strict=False) only tries (best effort, for stopping the engine): nothing local may block deleting a server.
    """
    import os

    from orchestrator.transports.ssh import load_client_key

    ssh = cfg.ssh
    if console is not None and ssh.passphrase_env and os.environ.get(ssh.passphrase_env):
        console.secrets.append(os.environ[ssh.passphrase_env])  # masked like every other secret
    if not strict:
        with contextlib.suppress(ConfigError):
            load_client_key(str(ssh.private_key_path), str(ssh.public_key_path), ssh.passphrase_env)
        return
    from orchestrator.steps.firewall import check_rule_limit

    check_rule_limit(cfg)  # UpCloud's 1000 rules per server: refused before a server exists, not at step 4
    if not ssh.public_key_path.is_file():
        raise ConfigError(
            f"SSH public key not found: {ssh.public_key_path}",
            "set ssh.public_key, or put the .pub file next to the private key",
            field="ssh.public_key",
        )
    load_client_key(str(ssh.private_key_path), str(ssh.public_key_path), ssh.passphrase_env)


def _write_run_metrics(ctx: StepContext, command: str, outcomes: Sequence[StepOutcome], ok: bool) -> None:
    from orchestrator.run_metrics import StepTiming, render_run_metrics, textfile_name, write_textfile

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
