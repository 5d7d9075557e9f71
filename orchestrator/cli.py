"""Command line: parse flags, pick the executor, call the runner, turn errors into `error:`/`hint:` and exit codes.

Heavy modules (pydantic models, paramiko, httpx, prometheus_client) are imported inside the commands, so
`orchestrator --help` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

# Plain help text: typer's rich formatting costs ~130 ms of imports on every invocation.
os.environ.setdefault("TYPER_USE_RICH", "0")
import typer  # noqa: E402

if TYPE_CHECKING:
    from orchestrator.config import DeploymentConfig
    from orchestrator.context import StepContext
    from orchestrator.errors import OrchestratorError
    from orchestrator.orphans import Orphan
    from orchestrator.progress import ProgressReporter
    from orchestrator.runner import StepOutcome
    from orchestrator.state import Deployment
    from orchestrator.transports.base import Executor

app = typer.Typer(
    help="Take a GPU model server from a laptop to production in one command, and back down again.\n\n"
    "Exit codes: 0 ok, 1 unexpected error, 2 bad usage/config, 3 provider (upctl), 4 credentials, 5 SSH, "
    "6 GPU verification, 7 host preparation, 8 engine start/health, 9 monitoring, 10 teardown incomplete, "
    "11 state, 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DryRun = Annotated[bool, typer.Option("--dry-run", help="Print every action a real run would take; change nothing.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print a JSON document on stdout instead of a summary.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks and every action.")]


class Console:
    """All user-facing output; masks secret values as a last line of defence."""

    def __init__(self, secrets: dict[str, str] | None = None, verbose: bool = False) -> None:
        self.secrets = [s for s in (secrets or {}).values() if s]
        self.verbose = verbose

    def mask(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text

    def err(self, text: str) -> None:
        print(self.mask(text), file=sys.stderr, flush=True)

    def out(self, text: str) -> None:
        print(self.mask(text), flush=True)


def _note_interrupt_reported() -> None:
    global _reported_interrupt
    _reported_interrupt = True


def _fail(console: Console, exc: OrchestratorError, debug: bool) -> NoReturn:
    if exc.exit_code == 130:
        _note_interrupt_reported()
    console.err(f"error: {exc.message}")
    if exc.details:
        tail = exc.details.strip().splitlines()[-25:]
        console.err("\n".join("  | " + line for line in tail))
    if exc.hint:
        lines = exc.hint.splitlines()
        console.err("hint: " + lines[0])
        for line in lines[1:]:
            console.err("      " + line)
    if debug:
        import traceback

        traceback.print_exc()
    raise typer.Exit(exc.exit_code)


def _guard(debug: bool, console: Console | None = None):  # type: ignore[no-untyped-def]
    """Context manager mapping every exception to the documented exit code."""
    import contextlib

    from orchestrator.errors import OrchestratorError

    @contextlib.contextmanager
    def guard():  # type: ignore[no-untyped-def]
        c = console or Console()
        try:
            yield c
        except OrchestratorError as exc:
            _fail(c, exc, debug)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            _note_interrupt_reported()
            c.err("error: interrupted (no step was running)")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the CLI boundary: no traceback without --debug
            c.err(f"error: internal error: {type(exc).__name__}: {exc}")
            c.err("hint: rerun with --debug and report the traceback")
            if debug:
                import traceback

                traceback.print_exc()
            raise typer.Exit(1) from None

    return guard()


def _sigterm_as_interrupt() -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _run_playbook(
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
    from orchestrator.context import StepContext
    from orchestrator.errors import OrchestratorError, StateError
    from orchestrator.playbook import load_playbook
    from orchestrator.progress import ProgressReporter
    from orchestrator.runner import Runner
    from orchestrator.secrets import load_secrets
    from orchestrator.state import Deployment, StateStore

    with _guard(debug):
        secrets, secrets_note = load_secrets(cfg, create_api_key=not dry_run and command != "teardown")
    console = Console(secrets, verbose=debug or dry_run)
    with _guard(debug, console), contextlib.ExitStack() as stack:
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
    from orchestrator.errors import Interrupted, StateError, TeardownIncomplete

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
    from orchestrator.errors import OrchestratorError
    from orchestrator.playbook import load_playbook
    from orchestrator.runner import Runner
    from orchestrator.transports.live import LiveExecutor

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
    from orchestrator.errors import ConfigError

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
    import time

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


def _load(config: str, *, check_files: bool = True) -> DeploymentConfig:
    from orchestrator.config import load_config

    return load_config(config, check_files=check_files)


@app.command()
def deploy(
    config: Annotated[str, typer.Argument(help="Deployment config YAML (see configs/).")],
    teardown_on_failure: Annotated[
        bool, typer.Option("--teardown-on-failure", help="Delete the server if the deploy fails (default: keep it).")
    ] = False,
    dry_run: DryRun = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Provision (or resume), prepare the host, start the engine, prove it serves, wire up Prometheus."""
    with _guard(debug):
        cfg = _load(config)
    _run_playbook(
        ["deploy"],
        cfg,
        config,
        dry_run=dry_run,
        as_json=as_json,
        debug=debug,
        command="deploy",
        teardown_on_failure=teardown_on_failure,
    )


@app.command()
def redeploy(
    config: Annotated[str, typer.Argument(help="Deployment config YAML.")],
    recreate: Annotated[bool, typer.Option("--recreate", help="Delete the server and deploy anew.")] = False,
    dry_run: DryRun = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Restart the engine with the current config on the existing server (--recreate: a new server)."""
    with _guard(debug):
        cfg = _load(config)
    books = ["teardown", "deploy"] if recreate else ["redeploy"]
    _run_playbook(
        books,
        cfg,
        config,
        dry_run=dry_run,
        as_json=as_json,
        debug=debug,
        command="redeploy",
        existing_required=True,
    )


@app.command()
def teardown(
    target: Annotated[str | None, typer.Argument(help="Deployment name, or its config file.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    orphans: Annotated[
        bool, typer.Option("--orphans", help="Delete servers with our labels that local state does not track.")
    ] = False,
    dry_run: DryRun = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Stop the engine, remove the scrape job, delete the server and its storages, confirm, forget."""
    from orchestrator.errors import ConfigError, StateError

    if orphans:
        _teardown_orphans(yes=yes, dry_run=dry_run, debug=debug)
        return
    with _guard(debug):
        if target is None:
            raise ConfigError("name a deployment (or its config file), or use --orphans")
        if target.endswith((".yaml", ".yml")) or Path(target).is_file():
            cfg = _load(target, check_files=False)  # tearing down needs no model files
        else:
            cfg = _config_from_state(target)
        from orchestrator.state import StateStore

        if StateStore().load(cfg.name) is None:
            raise StateError(
                f"no deployment named {cfg.name!r} in local state",
                "see `orchestrator status` (and `orchestrator status --orphans`); nothing was changed",
            )
        if not (yes or dry_run):
            _confirm(f"Delete deployment {cfg.name} and its server?")
    _run_playbook(
        ["teardown"],
        cfg,
        target,
        dry_run=dry_run,
        as_json=as_json,
        debug=debug,
        command="teardown",
        existing_required=True,
    )


def _confirm(question: str) -> None:
    from orchestrator.errors import ConfigError

    if not sys.stdin.isatty():
        raise ConfigError("this deletes servers: confirm with --yes when not interactive")
    if not typer.confirm(question, err=True):
        Console().err("aborted; nothing was changed")
        raise typer.Exit(1)


def _find_orphans() -> list[Orphan]:
    from orchestrator.context import upctl_binary
    from orchestrator.orphans import find_orphans
    from orchestrator.providers.upctl import UpctlCommands
    from orchestrator.state import StateStore
    from orchestrator.transports.local import run_local

    return find_orphans(UpctlCommands(upctl_binary()), lambda argv: run_local(argv, 120), StateStore().all())


def _teardown_orphans(*, yes: bool, dry_run: bool, debug: bool) -> None:
    from orchestrator.config import DeploymentConfig
    from orchestrator.context import StepContext
    from orchestrator.errors import OrchestratorError, TeardownIncomplete
    from orchestrator.orphans import orphan_rows
    from orchestrator.playbook import Playbook, PlaybookStep
    from orchestrator.progress import ProgressReporter
    from orchestrator.runner import Runner
    from orchestrator.state import Deployment, ServerRecord
    from orchestrator.transports.live import LiveExecutor
    from orchestrator.transports.recording import RecordingExecutor

    with _guard(debug) as console:
        orphans = _find_orphans()
        if not orphans:
            console.out("no orphaned servers: every server with our labels is tracked in local state")
            return
        for line in orphan_rows(orphans):
            console.out(line)
        if not (yes or dry_run):
            _confirm(f"Delete these {len(orphans)} server(s) and their storages?")
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


def _config_from_state(name: str) -> DeploymentConfig:
    from orchestrator.config import DeploymentConfig
    from orchestrator.errors import StateError
    from orchestrator.state import StateStore

    dep = StateStore().load(name)
    if dep is None:
        raise StateError(f"no deployment named {name!r} in local state", "see `orchestrator status`")
    if dep.config:
        return DeploymentConfig.model_validate(dep.config)
    return _load(dep.config_path, check_files=False)


@app.command()
def status(
    name: Annotated[str | None, typer.Argument(help="Only this deployment.")] = None,
    orphans: Annotated[
        bool, typer.Option("--orphans", help="Ask the cloud for servers with our labels that state does not track.")
    ] = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Deployments from local state: server, IP, plan, engine, endpoint, last health result."""
    from orchestrator.errors import StateError
    from orchestrator.progress import status_rows
    from orchestrator.state import StateStore

    if orphans:
        from orchestrator.orphans import orphan_rows

        with _guard(debug) as console:
            found = _find_orphans()
            if as_json:
                console.out(
                    json.dumps(
                        [
                            {
                                "uuid": o.server.uuid,
                                "hostname": o.server.hostname,
                                "deployment": o.server.deployment,
                                "state": o.server.state,
                                "plan": o.server.plan,
                                "zone": o.server.zone,
                                "reason": o.reason,
                            }
                            for o in found
                        ],
                        indent=2,
                    )
                )
            elif not found:
                console.out("no orphaned servers: every server with our labels is tracked in local state")
            else:
                for line in orphan_rows(found):
                    console.out(line)
                console.out(f"{len(found)} orphaned server(s); remove them with `orchestrator teardown --orphans`")
        return
    with _guard(debug) as console:
        store = StateStore()
        deps: list[Deployment]
        if name:
            one = store.load(name)
            if one is None:
                raise StateError(f"no deployment named {name!r} in {store.dir}", "see `orchestrator status`")
            deps = [one]
        else:
            deps = store.all()
        if as_json:
            console.out(json.dumps([_public(d) for d in deps], indent=2))
            return
        if not deps:
            console.out(f"no deployments in {store.dir}")
            return
        for line in status_rows(deps):
            console.out(line)


def _public(dep: Deployment) -> dict[str, object]:
    data = dep.model_dump(mode="json")
    data.pop("config", None)
    return data


@app.command()
def validate(config: Annotated[str, typer.Argument(help="Deployment config YAML.")], debug: Debug = False) -> None:
    """Check the config and the playbooks without touching anything."""
    from orchestrator.engines import engine_for
    from orchestrator.playbook import load_playbook

    with _guard(debug) as console:
        cfg = _load(config)
        books = [load_playbook(n) for n in ("deploy", "redeploy", "teardown")]
        engine_for(cfg)
        console.out(
            f"{config}: OK — deployment {cfg.name}, {cfg.engine.kind} serving {cfg.engine.served} "
            f"({cfg.engine.model}) on plan {cfg.provider.plan} in {cfg.provider.zone}; playbooks "
            + ", ".join(f"{b.name} ({len(b.steps)} steps)" for b in books)
            + " OK"
        )


_reported_interrupt = False


def main() -> None:
    """Run the CLI: Ctrl-C and SIGTERM raise KeyboardInterrupt, which the commands turn into exit 130."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _sigterm_as_interrupt()
    try:
        app()
    except SystemExit as exc:
        # The work is over: a late signal must not turn a finished run into a crash at exit.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if exc.code == 130:
            if not _reported_interrupt:
                Console().err("error: interrupted; nothing was changed")
            # CPython may re-deliver a caught Ctrl-C as death-by-SIGINT at exit; the documented code is 130.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise


if __name__ == "__main__":
    main()
