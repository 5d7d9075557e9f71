"""Prometheus' node exporter on the server (Ubuntu's ``prometheus-node-exporter`` package): host metrics
(``node_*``: CPU, memory, filesystems, network) on port 9100, scraped by a job of its own."""

from __future__ import annotations

from orchestrator.actions import Remote
from orchestrator.hostprep import apt, sudo
from orchestrator.monitoring import ScrapeTarget, job_name
from orchestrator.ports import NODE_PORT

PACKAGE = "prometheus-node-exporter"
SERVICE = "prometheus-node-exporter"  # the package's systemd unit; its postinst enables and starts it
JOB_SUFFIX = "-node"


def node_job(deployment: str) -> str:
    return job_name(deployment) + JOB_SUFFIX


def install(user: str) -> Remote:
    """Install the package and make sure its service is enabled and running (idempotent: a redeploy repeats it)."""
    command = f"{apt(['install', '-y', PACKAGE], user)} && {sudo(['systemctl', 'enable', '--now', SERVICE], user)}"
    return Remote(command, f"install Prometheus' node exporter (host metrics on :{NODE_PORT})", timeout=900)


def scrape_target(deployment: str, ip: str, interval: str) -> ScrapeTarget:
    return ScrapeTarget(
        job=node_job(deployment),
        targets=(f"{ip}:{NODE_PORT}",),
        labels=(("deployment", deployment), ("exporter", "node")),
        scrape_interval=interval,
    )
