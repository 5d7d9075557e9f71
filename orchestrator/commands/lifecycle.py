"""deploy, redeploy, teardown and validate: resolve the config, pick the command's spec, hand over to session.py."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.console import confirm, guard, set_json_errors

if TYPE_CHECKING:
    from orchestrator.config import DeploymentConfig
    from orchestrator.errors import StateError


def load(config: str, *, check_files: bool = True) -> DeploymentConfig:
    from orchestrator.config import load_config

    return load_config(config, check_files=check_files)


def deploy(config: str, *, teardown_on_failure: bool, dry_run: bool, as_json: bool, debug: bool) -> None:
    with guard(debug, as_json=as_json):
        cfg = load(config)
    from orchestrator.commands.specs import DEPLOY
    from orchestrator.session import run_playbooks

    run_playbooks(
        DEPLOY, cfg, config, dry_run=dry_run, as_json=as_json, debug=debug, teardown_on_failure=teardown_on_failure
    )


def redeploy(config: str, *, recreate: bool, dry_run: bool, as_json: bool, debug: bool) -> None:
    with guard(debug, as_json=as_json):
        cfg = load(config)
    from orchestrator.commands.specs import RECREATE, REDEPLOY
    from orchestrator.session import run_playbooks

    run_playbooks(RECREATE if recreate else REDEPLOY, cfg, config, dry_run=dry_run, as_json=as_json, debug=debug)


def teardown(
    target: str | None, *, yes: bool, orphans: bool, include_foreign: bool, dry_run: bool, as_json: bool, debug: bool
) -> None:
    from orchestrator.errors import ConfigError

    set_json_errors(as_json)  # every branch (--orphans included): a failure prints the JSON error object
    if orphans:
        from orchestrator.commands.orphans import teardown_orphans

        teardown_orphans(yes=yes, dry_run=dry_run, debug=debug, as_json=as_json, include_foreign=include_foreign)
        return
    if include_foreign:
        with guard(debug, as_json=as_json):
            raise ConfigError("--include-foreign only goes with --orphans")
    with guard(debug, as_json=as_json):
        if target is None:
            raise ConfigError("name a deployment (or its config file), or use --orphans")
        if target.endswith((".yaml", ".yml")) or Path(target).is_file():
            cfg = load(target, check_files=False)  # tearing down needs no model files
        else:
            cfg = config_from_state(target)
        from orchestrator.state import StateStore

        if StateStore().load(cfg.name) is None:
            raise not_tracked(cfg.name)
        if not (yes or dry_run):
            confirm(f"Delete deployment {cfg.name} and its server?")
    from orchestrator.commands.specs import TEARDOWN
    from orchestrator.session import run_playbooks

    run_playbooks(TEARDOWN, cfg, target, dry_run=dry_run, as_json=as_json, debug=debug)


def config_from_state(name: str) -> DeploymentConfig:
    """The config a deployment was deployed with, from its state record (no config file needed)."""
    from orchestrator.commands.target import config_of
    from orchestrator.state import StateStore

    dep = StateStore().load(name)
    if dep is None:
        raise not_tracked(name)
    return config_of(dep)


def not_tracked(name: str) -> StateError:
    """Teardown of a name local state does not know: nothing to do here, but its server may still be billing."""
    from orchestrator.errors import StateError

    return StateError(
        f"no deployment named {name!r} in local state",
        "see `orchestrator status`; a server whose record was lost: `orchestrator status --orphans`, then "
        "`orchestrator teardown --orphans`; nothing was changed",
    )


def validate(config: str, *, as_json: bool, debug: bool) -> None:
    import json

    from orchestrator.engines import engine_for
    from orchestrator.playbook import load_playbook

    with guard(debug, as_json=as_json) as console:
        cfg = load(config)
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
