"""Steps by kind: each is a generator that yields actions and gets their results back."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.context import StepContext, StepGen
from orchestrator.steps.autostop import auto_stop
from orchestrator.steps.engine import health, start_engine, stop_engine
from orchestrator.steps.firewall import firewall, firewall_access
from orchestrator.steps.host import connect, install_stack, verify_gpu
from orchestrator.steps.mlstack import ml_stack
from orchestrator.steps.monitoring import monitoring, unmonitor
from orchestrator.steps.prepare import prepare_host
from orchestrator.steps.provision import provision
from orchestrator.steps.teardown import destroy_server, forget

STEPS: dict[str, Callable[[StepContext], StepGen]] = {
    "provision": provision,
    "firewall-access": firewall_access,
    "connect": connect,
    "firewall": firewall,
    "prepare-host": prepare_host,
    "auto-stop": auto_stop,
    "verify-gpu": verify_gpu,
    "ml-stack": ml_stack,
    "install-stack": install_stack,
    "start-engine": start_engine,
    "health": health,
    "monitoring": monitoring,
    "stop-engine": stop_engine,
    "unmonitor": unmonitor,
    "destroy-server": destroy_server,
    "forget": forget,
}
