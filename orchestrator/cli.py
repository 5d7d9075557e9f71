"""Command line: the typer commands. Each parses flags and hands over to session.py; console.py maps errors.

Heavy modules (pydantic models, paramiko, httpx, prometheus_client) are imported inside the commands, so
`orchestrator --help` stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

# Plain help text: typer's rich formatting costs ~130 ms of imports on every invocation.
os.environ.setdefault("TYPER_USE_RICH", "0")
import typer  # noqa: E402

from orchestrator.console import (  # noqa: E402
    Console,
    confirm,
    guard,
    interrupt_reported,
    report_error,
    set_json_errors,
)

if TYPE_CHECKING:
    from orchestrator.config import DeploymentConfig
    from orchestrator.state import Deployment

app = typer.Typer(
    help="Take a GPU model server from a laptop to production in one command, and back down again.\n\n"
    "Exit codes: 0 ok, 1 unexpected error, 2 bad usage/config, 3 provider (upctl), 4 credentials, 5 SSH, "
    "6 GPU verification, 7 host preparation, 8 engine start/health, 9 monitoring, 10 teardown incomplete, "
    "11 state, 130 interrupted.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; --help pays nothing measurable (bench/)
    pretty_exceptions_enable=False,
)

DryRun = Annotated[bool, typer.Option("--dry-run", help="Print every action a real run would take; change nothing.")]
JsonOut = Annotated[
    bool,
    typer.Option(
        "--json",
        help='Print one JSON document on stdout (errors too: {"ok": false, "error", "hint", "exit_code"}).',
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks and every action.")]


def _show_version(value: bool) -> None:
    if value:
        from orchestrator import installed_version

        typer.echo(f"orchestrator {installed_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


def _sigterm_as_interrupt() -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


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
    with guard(debug, as_json=as_json):
        cfg = _load(config)
    from orchestrator.session import run_playbooks

    run_playbooks(
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
    recreate: Annotated[
        bool, typer.Option("--recreate", help="Delete the server and deploy anew (the generated API key is kept).")
    ] = False,
    dry_run: DryRun = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Restart the engine with the current config on the existing server (--recreate: a new server).

    A recorded server that no longer exists is an error (exit 11): redeploy never creates one without --recreate.
    """
    with guard(debug, as_json=as_json):
        cfg = _load(config)
    books = ["teardown", "deploy"] if recreate else ["redeploy"]
    from orchestrator.session import run_playbooks

    run_playbooks(
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
        bool,
        typer.Option(
            "--orphans", help="Delete this installation's servers (owner label) that local state does not track."
        ),
    ] = False,
    include_foreign: Annotated[
        bool,
        typer.Option(
            "--include-foreign",
            help="With --orphans: also delete untracked servers of OTHER owners or without an owner label "
            "(asked separately unless --yes).",
        ),
    ] = False,
    dry_run: DryRun = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Stop the engine, remove the scrape job, delete the server and its storages, confirm, forget."""
    from orchestrator.errors import ConfigError, StateError

    set_json_errors(as_json)  # every branch (--orphans included): a failure prints the JSON error object

    if orphans:
        from orchestrator.session import teardown_orphans

        teardown_orphans(
            yes=yes, dry_run=dry_run, debug=debug, as_json=as_json, include_foreign=include_foreign
        )
        return
    if include_foreign:
        with guard(debug, as_json=as_json):
            raise ConfigError("--include-foreign only goes with --orphans")
    with guard(debug, as_json=as_json):
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
            confirm(f"Delete deployment {cfg.name} and its server?")
    from orchestrator.session import run_playbooks

    run_playbooks(
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
    return _load(dep.config_path, check_files=False)


@app.command()
def status(
    name: Annotated[str | None, typer.Argument(help="Only this deployment.")] = None,
    orphans: Annotated[
        bool,
        typer.Option(
            "--orphans",
            help="Ask the cloud for untracked servers with our labels: this installation's, and others' apart.",
        ),
    ] = False,
    live_check: Annotated[
        bool,
        typer.Option("--live", help="With NAME: also ask the cloud (server state) and the engine (a health probe)."),
    ] = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Deployments from local state: server, IP, plan, engine, endpoint, last health result, cost.

    With NAME and --live it also asks the cloud (server state) and the engine (one health probe)."""
    from orchestrator.errors import StateError

    set_json_errors(as_json)  # every branch (--orphans included): a failure prints the JSON error object
    from orchestrator.progress import status_rows
    from orchestrator.state import StateStore

    if orphans:
        from orchestrator.session import describe_orphans, find_orphans, orphans_document

        with guard(debug, as_json=as_json) as console:
            owner, found = find_orphans()
            if as_json:
                console.out(json.dumps(orphans_document(owner, found), indent=2))
            else:
                describe_orphans(console, owner, found)
        return
    with guard(debug, as_json=as_json) as console:
        store = StateStore()
        deps: list[Deployment]
        if name:
            one = store.load(name)
            if one is None:
                raise StateError(f"no deployment named {name!r} in {store.dir}", "see `orchestrator status`")
            deps = [one]
        else:
            deps = store.all()
        docs = [_public(d) for d in deps] if as_json else []
        live_doc = None
        if live_check and not name:
            from orchestrator.errors import ConfigError

            raise ConfigError("--live needs a deployment NAME", "orchestrator status NAME --live")
        if name and live_check:
            from orchestrator.commands.status import live, live_lines

            live_doc = live(deps[0])
            if as_json:
                docs[0]["live"] = _iso_times(live_doc)
        if as_json:
            console.out(json.dumps(docs, indent=2))
            return
        if not deps:
            console.out(f"no deployments in {store.dir}")
            return
        for line in status_rows(deps):
            console.out(line)
        for line in live_lines(live_doc) if live_doc else []:
            console.out(line)


def _public(dep: Deployment) -> dict[str, object]:
    """A deployment for `status --json`: the state document without the config snapshot, times in ISO-8601 UTC."""
    import time

    from orchestrator.cost import cost_so_far, price_of

    data = dep.model_dump(mode="json")
    data.pop("config", None)
    price, currency = price_of(dep.config)
    data["cost"] = {
        "price_per_hour": price,
        "currency": currency if price is not None else None,
        "so_far": round(cost_so_far(price, dep.created_at, time.time()), 4) if price and dep.server else None,
    }
    result = _iso_times(data)
    assert isinstance(result, dict)
    return result


def _iso_times(value: object, key: str = "") -> object:
    """Every `*_at` field (created_at, updated_at, auto_stop_at, health.checked_at, steps.*.finished_at, ...),
    stored as Unix seconds, becomes e.g. "2026-05-04T12:00:00Z"."""
    if isinstance(value, dict):
        return {k: _iso_times(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso_times(v) for v in value]
    if key.endswith("_at") and isinstance(value, (int, float)) and not isinstance(value, bool):
        from datetime import datetime, timezone

        return datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="The deployment to load-test.")],
    concurrency: Annotated[str, typer.Option(help="Concurrency levels, comma-separated, run in turn.")] = "1,4,16",
    requests: Annotated[int, typer.Option(help="Requests per concurrency level.")] = 64,
    input_tokens: Annotated[int, typer.Option(help="Prompt length per request (words).")] = 128,
    output_tokens: Annotated[int, typer.Option(help="Tokens generated per request (ignore_eos).")] = 128,
    timeout: Annotated[float, typer.Option(help="Seconds each level may take (and each request).")] = 300.0,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Load-test the endpoint from here: TTFT, TPOT, ITL, e2e latency p50/p95/p99, tokens/s, cost per 1M tokens."""
    from orchestrator.commands.bench import bench as run_bench

    with guard(debug, as_json=as_json) as console:
        run_bench(
            console,
            name,
            concurrency=concurrency,
            requests=requests,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            timeout=timeout,
            as_json=as_json,
        )


@app.command()
def validate(
    config: Annotated[str, typer.Argument(help="Deployment config YAML.")],
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Check the config and the playbooks without touching anything."""
    from orchestrator.engines import engine_for
    from orchestrator.playbook import load_playbook

    with guard(debug, as_json=as_json) as console:
        cfg = _load(config)
        books = [load_playbook(n) for n in ("deploy", "redeploy", "teardown")]
        engine_for(cfg)
        if as_json:
            doc = {
                "ok": True,
                "config": config,
                "deployment": cfg.name,
                "engine": cfg.engine.kind,
                "served": cfg.engine.served,
                "model": cfg.engine.model,
                "plan": cfg.provider.plan,
                "zone": cfg.provider.zone,
                "playbooks": {b.name: len(b.steps) for b in books},
            }
            console.out(json.dumps(doc, indent=2))
            return
        console.out(
            f"{config}: OK — deployment {cfg.name}, {cfg.engine.kind} serving {cfg.engine.served} "
            f"({cfg.engine.model}) on plan {cfg.provider.plan} in {cfg.provider.zone}; playbooks "
            + ", ".join(f"{b.name} ({len(b.steps)} steps)" for b in books)
            + " OK"
        )


@app.command()
def schema(debug: Debug = False) -> None:
    """Print the config file's JSON Schema (for editors: `orchestrator schema > orchestrator.schema.json`)."""
    with guard(debug) as console:
        from orchestrator.commands.schema import config_schema

        console.out(json.dumps(config_schema(), indent=2))


def _engines() -> list[str]:
    from orchestrator.commands.init import ENGINES

    return list(ENGINES)


@app.command()
def init(
    engine: Annotated[
        str,
        typer.Option(
            "--engine", help="Serving engine of the starter config: vllm, triton or tfserving.", autocompletion=_engines
        ),
    ] = "vllm",
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write to this file (default: stdout); an existing one only with --force."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --output file.")] = False,
    debug: Debug = False,
) -> None:
    """Write a commented starter config (an L40S in fi-hel2; keys with their defaults) to stdout or --output."""
    from orchestrator.commands.init import starter_config, write_starter

    with guard(debug) as console:
        if output is None:
            console.out(starter_config(engine).rstrip("\n"))
            return
        path = write_starter(engine, output, force=force)
        console.err(f"wrote {path}; check it with `orchestrator validate {path}`")


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C (exit 0).")
    ] = False,
    tail: Annotated[int, typer.Option("--tail", "-n", help="Lines from the end of the log to start with.")] = 100,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only lines since a duration ago (10m, 1h) or a timestamp (docker engines)."),
    ] = None,
    debug: Debug = False,
) -> None:
    """The engine's log on the server (docker logs for containers, else the engine's log file), over SSH."""
    from orchestrator.commands.logs import logs as run_logs

    raise typer.Exit(run_logs(name, tail=tail, since=since, follow=follow, debug=debug))


@app.command(context_settings={"allow_interspersed_args": False})
def ssh(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    command: Annotated[
        list[str] | None, typer.Argument(help="After --: one command (its exit status is passed through).")
    ] = None,
    debug: Debug = False,
) -> None:
    """A shell on the server, or `-- CMD...`: one command; pinned host key only (no prompt, no trust on first use)."""
    from orchestrator.commands.ssh import ssh as run_ssh

    raise typer.Exit(run_ssh(name, list(command or []), debug=debug))


@app.command()
def extend(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    duration: Annotated[str, typer.Argument(help="New time left from now, e.g. 4h, 90m, 1h30m.")],
    dry_run: DryRun = False,
    debug: Debug = False,
) -> None:
    """Re-arm the on-host auto-stop timer: the server powers itself off DURATION from now."""
    from orchestrator.commands.extend import extend as run_extend

    run_extend(name, duration, dry_run=dry_run, debug=debug)


def _run_app() -> int:
    """The typer app, with its usage errors (unknown option, missing argument: exit 2) under the --json contract."""
    from typer.main import get_command

    try:
        # One program name however it was started (`python -m orchestrator` too): usage lines, and the shell
        # completion script's function and its _ORCHESTRATOR_COMPLETE variable.
        code = get_command(app).main(standalone_mode=False, prog_name="orchestrator")
    except typer.Abort:
        Console().err("Aborted!")
        return 1
    except Exception as exc:
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if not callable(show) or not isinstance(exit_code, int):  # not a usage error: a bug, shown as such
            raise
        show()  # click's own usage message on stderr
        if "--json" in sys.argv[1:] and exit_code != 0:
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            hint = "see `orchestrator --help` (or COMMAND --help)"
            print(json.dumps({"ok": False, "error": message, "hint": hint, "exit_code": exit_code}, indent=2))
        return exit_code
    return code if isinstance(code, int) else 0


def main() -> None:
    """Run the CLI: Ctrl-C and SIGTERM raise KeyboardInterrupt, which the commands turn into exit 130."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _sigterm_as_interrupt()
    try:
        raise SystemExit(_run_app())
    except SystemExit as exc:
        # The work is over: a late signal must not turn a finished run into a crash at exit.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if exc.code == 130:
            if not interrupt_reported():
                report_error(Console(), 130, "interrupted; nothing was changed", None)
            # CPython may re-deliver a caught Ctrl-C as death-by-SIGINT at exit; the documented code is 130.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise


if __name__ == "__main__":
    main()
