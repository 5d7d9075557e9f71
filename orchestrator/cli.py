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


def _fail(console: Console, exc: OrchestratorError, debug: bool) -> NoReturn:
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
            c.err("error: interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the CLI boundary: no traceback without --debug
            c.err(f"error: internal error: {type(exc).__name__}: {exc}")
            c.err("hint: rerun with --debug and report the traceback")
            if debug:
                import traceback

                traceback.print_exc()
            raise typer.Exit(1) from None

    return guard()


def _secrets(cfg: DeploymentConfig) -> dict[str, str]:
    from orchestrator.engines.vllm import API_KEY, HF_TOKEN

    found: dict[str, str] = {}
    for name, env in ((API_KEY, cfg.engine.api_key_env), (HF_TOKEN, cfg.engine.hf_token_env)):
        if env and os.environ.get(env):
            found[name] = os.environ[env]
    return found


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
) -> None:
    from orchestrator.context import StepContext
    from orchestrator.errors import Interrupted, OrchestratorError, StateError
    from orchestrator.playbook import load_playbook
    from orchestrator.progress import ProgressReporter
    from orchestrator.runner import Runner
    from orchestrator.state import Deployment, StateStore

    secrets = _secrets(cfg)
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
            _sigterm_as_interrupt()
            if not secrets.get("engine_api_key") and cfg.engine.api_key_env and command != "teardown":
                reporter.info(
                    f"warning: ${cfg.engine.api_key_env} is not set: the engine API will accept "
                    "requests from anyone who can reach its port"
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
            extra = []
            if command != "teardown" and dep.server is not None and not dry_run:
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
            raise failure


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


def _load(config: str) -> DeploymentConfig:
    from orchestrator.config import load_config

    return load_config(config)


@app.command()
def deploy(
    config: Annotated[str, typer.Argument(help="Deployment config YAML (see configs/).")],
    dry_run: DryRun = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Provision (or resume), prepare the host, start the engine, prove it serves, wire up Prometheus."""
    with _guard(debug):
        cfg = _load(config)
    _run_playbook(["deploy"], cfg, config, dry_run=dry_run, as_json=as_json, debug=debug, command="deploy")


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
    target: Annotated[str, typer.Argument(help="Deployment name, or its config file.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: DryRun = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Stop the engine, remove the scrape job, delete the server and its storages, confirm, forget."""
    from orchestrator.errors import ConfigError, StateError

    with _guard(debug) as console:
        if target.endswith((".yaml", ".yml")) or Path(target).is_file():
            cfg = _load(target)
        else:
            cfg = _config_from_state(target)
        from orchestrator.state import StateStore

        if StateStore().load(cfg.name) is None:
            raise StateError(
                f"no deployment named {cfg.name!r} in local state",
                "see `orchestrator status`; nothing was changed",
            )
        if not (yes or dry_run):
            if not sys.stdin.isatty():
                raise ConfigError("teardown deletes a server: confirm with --yes when not interactive")
            if not typer.confirm(f"Delete deployment {cfg.name} and its server?", err=True):
                console.err("aborted; nothing was changed")
                raise typer.Exit(1)
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


def _config_from_state(name: str) -> DeploymentConfig:
    from orchestrator.config import DeploymentConfig
    from orchestrator.errors import StateError
    from orchestrator.state import StateStore

    dep = StateStore().load(name)
    if dep is None:
        raise StateError(f"no deployment named {name!r} in local state", "see `orchestrator status`")
    if dep.config:
        return DeploymentConfig.model_validate(dep.config)
    return _load(dep.config_path)


@app.command()
def status(
    name: Annotated[str | None, typer.Argument(help="Only this deployment.")] = None,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Deployments from local state: server, IP, plan, engine, endpoint, last health result."""
    from orchestrator.errors import StateError
    from orchestrator.progress import status_rows
    from orchestrator.state import StateStore

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
