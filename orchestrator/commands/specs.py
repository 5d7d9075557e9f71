"""What each playbook command is, declared once: session.run_playbooks reads these fields, never a command name.

A command that runs playbooks (deploy, redeploy, redeploy --recreate, teardown) is one frozen CommandSpec: which
playbooks, what it needs and sets before the first step, which status words it records, and how a failure is
explained. Adding a command is adding a spec here (and its typer declaration in cli.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrator.context import EXISTING_SERVER_ONLY, RESTART_FACT


@dataclass(frozen=True)
class CommandSpec:
    """One playbook command, declared: every field is a difference session.run_playbooks acts on."""

    name: str  # the CLI command: shown in the dry-run header, the lock file, the summary and the resume hint
    playbooks: tuple[str, ...]
    existing_required: bool = False  # an unknown deployment is a StateError (exit 11) before anything runs
    # The engine's secrets: the API key is generated on a real run (a same-length stand-in in the dry run), and
    # the note about it (or the warning that there is none) is shown. A command that only removes needs neither.
    engine_secrets: bool = True
    sets_owner: bool = True  # the owner fact: new servers carry it, a same-named server of anyone else clashes
    strict_preflight: bool = True  # the key pair must load; False: best effort (nothing local blocks a delete)
    facts: tuple[tuple[str, object], ...] = ()  # set in ctx.facts before the first step
    # Playbook steps of these kinds are dropped (redeploy --recreate keeps teardown's `forget`: the record and
    # the generated API key survive the server's replacement).
    drop_steps: tuple[tuple[str, str], ...] = ()  # (playbook, step kind)
    fresh_record_before: str | None = None  # before this playbook the state record starts afresh (config kept)
    status_running: str = "deploying"  # recorded while it runs
    status_done: str | None = "deployed"  # recorded when it succeeds; None: the playbook forgets the record
    writes_run_metrics: bool = True  # the Prometheus textfile of step timings (monitoring.run_metrics)
    on_failure: Literal["keep-server", "teardown-incomplete"] = "keep-server"
    resume_flags: str = ""  # appended to `orchestrator NAME CONFIG` in the resume hint
    rolling: bool = False  # a fleet (fleet.py): one replica at a time, each healthy before the next

    @property
    def removes(self) -> bool:
        """A failure means something may be left billing: reported as TeardownIncomplete (exit 10)."""
        return self.on_failure == "teardown-incomplete"


DEPLOY = CommandSpec(name="deploy", playbooks=("deploy",))
REDEPLOY = CommandSpec(
    name="redeploy",
    playbooks=("redeploy",),
    existing_required=True,
    facts=((RESTART_FACT, True), (EXISTING_SERVER_ONLY, True)),
    rolling=True,
)
RECREATE = CommandSpec(
    name="redeploy",
    playbooks=("teardown", "deploy"),
    existing_required=True,
    facts=((RESTART_FACT, True),),
    drop_steps=(("teardown", "forget"),),
    fresh_record_before="deploy",
    rolling=True,
)
TEARDOWN = CommandSpec(
    name="teardown",
    playbooks=("teardown",),
    existing_required=True,
    engine_secrets=False,
    sets_owner=False,
    strict_preflight=False,
    status_running="tearing-down",
    status_done=None,
    writes_run_metrics=False,
    on_failure="teardown-incomplete",
    resume_flags=" --yes",
)

SPECS: dict[str, CommandSpec] = {"deploy": DEPLOY, "redeploy": REDEPLOY, "teardown": TEARDOWN}
