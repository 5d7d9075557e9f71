"""Command line: the typer declarations. Each command parses its flags and hands over to its module in
orchestrator/commands/ (which runs playbooks through session.py); console.py maps errors.

Heavy modules (pydantic models, paramiko, httpx, rich) are imported inside the commands, so
`orchestrator --help` stays fast. entry.py answers the usual `status`, `ssh` and `logs` invocations, the dry runs
and `validate` without loading this module.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

# Plain help text: typer's rich formatting costs ~130 ms of imports on every invocation.
os.environ.setdefault("TYPER_USE_RICH", "0")
import typer  # noqa: E402

from orchestrator.console import Console, guard  # noqa: E402

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
    from orchestrator.commands import lifecycle

    lifecycle.deploy(config, teardown_on_failure=teardown_on_failure, dry_run=dry_run, as_json=as_json, debug=debug)


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
    from orchestrator.commands import lifecycle

    lifecycle.redeploy(config, recreate=recreate, dry_run=dry_run, as_json=as_json, debug=debug)


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
    from orchestrator.commands import lifecycle

    lifecycle.teardown(
        target,
        yes=yes,
        orphans=orphans,
        include_foreign=include_foreign,
        dry_run=dry_run,
        as_json=as_json,
        debug=debug,
    )


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
    local: Annotated[
        bool,
        typer.Option("--local", help="Local state only: ask neither the cloud nor the engine (no network)."),
    ] = False,
    live_check: Annotated[
        bool,
        typer.Option("--live", hidden=True, help="Accepted for compatibility: live checks are the default."),
    ] = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Deployments: local state (server, IP, plan, engine, endpoint, last health, cost) and, live, the server's
    state from the cloud and one health probe of the engine (concurrently, bounded; --local skips them)."""
    from orchestrator.commands.status import status as run_status

    run_status(name, orphans=orphans, local=local, as_json=as_json, debug=debug)


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
    from orchestrator.commands.lifecycle import validate as run_validate

    run_validate(config, as_json=as_json, debug=debug)


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
    name: Annotated[str, typer.Argument(help="Deployment name; NAME/rI: a fleet's replica I.")],
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
    name: Annotated[str, typer.Argument(help="Deployment name; NAME/rI: a fleet's replica I.")],
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
    name: Annotated[str, typer.Argument(help="Deployment name; NAME/rI: a fleet's replica I.")],
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
    from orchestrator.entry import run

    run(_run_app)


if __name__ == "__main__":
    main()
