"""Steps by kind: each is a generator that yields actions and gets their results back.

STEPS maps every kind (playbook.py's StepKind) to its function. A step's module is imported the first time a
playbook runs that kind, so a command loads only the steps its playbooks have (a teardown: four of twenty-four).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from orchestrator.context import StepContext, StepGen

StepFn = Callable[[StepContext], StepGen]

# kind: (module in orchestrator/steps/, function)
WHERE: dict[str, tuple[str, str]] = {
    "provision": ("provision", "provision"),
    "firewall-access": ("firewall", "firewall_access"),
    "connect": ("host", "connect"),
    "server-running": ("running", "server_running"),
    "firewall": ("firewall", "firewall"),
    "prepare-host": ("prepare", "prepare_host"),
    "auto-stop": ("autostop", "auto_stop"),
    "verify-gpu": ("host", "verify_gpu"),
    "ml-stack": ("mlstack", "ml_stack"),
    "install-stack": ("host", "install_stack"),
    "start-engine": ("engine", "start_engine"),
    "health": ("engine", "health"),
    "monitoring": ("monitoring", "monitoring"),
    "stop-engine": ("engine", "stop_engine"),
    "unmonitor": ("monitoring", "unmonitor"),
    "destroy-server": ("teardown", "destroy_server"),
    "forget": ("teardown", "forget"),
    "private-network": ("cluster", "private_network"),
    "ray-cluster": ("cluster", "ray_cluster"),
    "ray-serve": ("cluster", "ray_serve"),
    "ray-metrics": ("cluster", "ray_metrics"),
    "ray-leave": ("cluster", "ray_leave"),
    "ray-down": ("cluster", "ray_down"),
    "delete-network": ("cluster", "delete_network"),
}


class StepRegistry(dict[str, StepFn]):
    """A dict of kind → function that imports a kind's module on its first look-up (a test may still set one)."""

    def __missing__(self, kind: str) -> StepFn:
        module, name = WHERE[kind]  # an unknown kind: KeyError, as from a plain dict
        step: StepFn = getattr(importlib.import_module(f"orchestrator.steps.{module}"), name)
        self[kind] = step
        return step

    def __contains__(self, kind: object) -> bool:
        return kind in WHERE or super().__contains__(kind)


STEPS = StepRegistry()
