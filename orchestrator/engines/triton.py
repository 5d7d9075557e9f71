"""NVIDIA Triton Inference Server from the nvcr.io tritonserver image, serving an uploaded model repository."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from orchestrator.actions import HttpCheck
from orchestrator.config import DeploymentConfig
from orchestrator.engine_config import TritonConfig
from orchestrator.engines.base import StartAction
from orchestrator.engines.docker import DockerEngine
from orchestrator.model_files import model_dirs
from orchestrator.monitoring import ScrapeTarget, job_name

HTTP, GRPC, METRICS = 8000, 8001, 8002  # inside the container; the config picks the published host ports


class TritonEngine(DockerEngine):
    kind = "triton"
    label = "Triton"

    def __init__(self, cfg: DeploymentConfig) -> None:
        if not isinstance(cfg.engine, TritonConfig):
            raise TypeError(f"TritonEngine needs a triton engine config, not {cfg.engine.kind}")
        super().__init__(cfg, cfg.engine.image)
        self.e = cfg.engine

    @property
    def repository(self) -> Path:
        return Path(self.e.model_repository).expanduser()

    def ready_models(self) -> list[str]:
        """The models that must be ready: the configured ones, else every model directory."""
        return list(self.e.models) or model_dirs(self.repository)

    def server_args(self) -> list[str]:
        args = ["tritonserver", "--model-repository=/models"]
        if self.e.models and not any(a.startswith("--model-control-mode") for a in self.e.extra_args):
            # Only the listed models are loaded (others in the repository stay unloaded).
            args += ["--model-control-mode=explicit", *(f"--load-model={m}" for m in self.e.models)]
        return args + list(self.e.extra_args)

    def uploads(self, secrets: dict[str, str] | None = None) -> list[StartAction]:
        return self.upload_dir(self.repository, "models")

    def run_words(self, secrets: dict[str, str] | None = None) -> str:
        e = self.e
        return self.docker_run(
            ports=[(e.http_port, HTTP), (e.grpc_port, GRPC), (e.metrics_port, METRICS)],
            mounts=[("models", "/models")],
            args=self.server_args(),
            flags=("--shm-size=1g",),  # the python backend moves tensors through shared memory
        )

    # -- health / monitoring ---------------------------------------------------------------------
    def endpoint(self, ip: str) -> str:
        return f"http://{ip}:{self.e.http_port}/v2"

    def readiness(self, ip: str, api_key: bool) -> list[HttpCheck]:
        base = f"http://{ip}:{self.e.http_port}/v2"
        h = self.e.health
        alive, tail = self.running_probe(), self.log_tail()
        # 400 means "not ready yet"; with --strict-readiness (default) the server is ready once all models are.
        checks = [
            HttpCheck(
                "GET",
                f"{base}/health/ready",
                "triton-ready",
                wait=h.timeout,
                interval=h.interval,
                liveness=alive,
                log_tail=tail,
            )
        ]
        for model in self.ready_models():
            url = f"{base}/models/{quote(model, safe='')}/ready"
            checks.append(
                HttpCheck(
                    "GET",
                    url,
                    "triton-ready",
                    model,
                    wait=h.timeout,
                    interval=h.interval,
                    liveness=alive,
                    log_tail=tail,
                )
            )
        return checks

    def scrape_target(self, ip: str) -> ScrapeTarget:
        # No "model" target label: Triton's own series carry model="..." and would be renamed exported_model.
        return ScrapeTarget(
            job=job_name(self.cfg.name),
            targets=(f"{ip}:{self.e.metrics_port}",),
            metrics_path="/metrics",
            labels=(("deployment", self.cfg.name), ("engine", "triton")),
            scrape_interval=self.cfg.monitoring.scrape_interval,
        )
