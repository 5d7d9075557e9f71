"""NVIDIA's DCGM exporter on the server: GPU metrics (``DCGM_FI_DEV_*``) on port 9400, its own scrape job."""

from __future__ import annotations

import shlex

from orchestrator.actions import Remote
from orchestrator.monitoring import ScrapeTarget, job_name
from orchestrator.ports import DCGM_PORT

DCGM_CONTAINER = "orchestrator-dcgm-exporter"
DEFAULT_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter:4.5.3-4.8.2-distroless"


def gpu_job(deployment: str) -> str:
    return job_name(deployment) + "-gpu"


def start(image: str) -> Remote:
    """(Re)start the exporter: restart policy unless-stopped, so it is back after a reboot."""
    run = [
        "docker", "run", "-d", "--name", DCGM_CONTAINER, "--restart", "unless-stopped", "--gpus", "all",
        "--cap-add", "SYS_ADMIN", "-p", f"{DCGM_PORT}:{DCGM_PORT}", image,
    ]  # fmt: skip
    command = f"docker rm -f {shlex.quote(DCGM_CONTAINER)} >/dev/null 2>&1; {shlex.join(run)}"
    return Remote(command, f"start NVIDIA's DCGM exporter (GPU metrics on :{DCGM_PORT})", timeout=900)


def scrape_target(deployment: str, ip: str, interval: str) -> ScrapeTarget:
    return ScrapeTarget(
        job=gpu_job(deployment),
        targets=(f"{ip}:{DCGM_PORT}",),
        labels=(("deployment", deployment), ("exporter", "dcgm")),
        scrape_interval=interval,
    )
