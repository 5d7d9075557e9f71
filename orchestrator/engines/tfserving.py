"""TensorFlow Serving from the tensorflow/serving GPU image, serving an uploaded SavedModel with metrics on."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from orchestrator.actions import HttpCheck, Upload
from orchestrator.config import DeploymentConfig
from orchestrator.engine_config import TfServingConfig
from orchestrator.engines.base import StartAction
from orchestrator.engines.docker import DockerEngine
from orchestrator.monitoring import ScrapeTarget, job_name

REST, GRPC = 8501, 8500  # inside the container; the config picks the published host ports
METRICS_PATH = "/monitoring/prometheus/metrics"
MONITORING_FILE = "/models/monitoring.config"


def monitoring_config() -> str:
    """MonitoringConfig text proto: without it TF Serving exposes no metrics at all."""
    return f'prometheus_config {{\n  enable: true,\n  path: "{METRICS_PATH}"\n}}\n'


class TfServingEngine(DockerEngine):
    kind = "tfserving"
    label = "TF Serving"

    def __init__(self, cfg: DeploymentConfig) -> None:
        if not isinstance(cfg.engine, TfServingConfig):
            raise TypeError(f"TfServingEngine needs a tfserving engine config, not {cfg.engine.kind}")
        super().__init__(cfg, cfg.engine.image)
        self.e = cfg.engine
        self.model = cfg.engine.served

    def uploads(self, secrets: dict[str, str] | None = None) -> list[StartAction]:
        return [
            *self.upload_dir(Path(self.e.saved_model).expanduser(), "model"),
            Upload(f"{self.run_dir}/monitoring.config", monitoring_config(), 0o644),
        ]

    def run_words(self, secrets: dict[str, str] | None = None) -> str:
        e = self.e
        # The image runs tensorflow_model_server --model_name=$MODEL_NAME --model_base_path=/models/$MODEL_NAME
        # and appends these arguments.
        return self.docker_run(
            ports=[(e.rest_port, REST), (e.grpc_port, GRPC)],
            mounts=[("model", f"/models/{self.model}"), ("monitoring.config", f"{MONITORING_FILE}:ro")],
            env=(f"MODEL_NAME={self.model}",),
            args=[f"--monitoring_config_file={MONITORING_FILE}", *e.extra_args],
        )

    # -- health / monitoring ---------------------------------------------------------------------
    def endpoint(self, ip: str) -> str:
        return f"http://{ip}:{self.e.rest_port}/v1/models/{quote(self.model, safe='')}"

    def readiness(self, ip: str, api_key: bool) -> list[HttpCheck]:
        url = self.endpoint(ip)
        h = self.e.health
        alive, tail = self.running_probe(), self.log_tail()
        # No /health in TF Serving: a version AVAILABLE (error_code OK) is ready.
        checks = [
            HttpCheck(
                "GET",
                url,
                "tfs-available",
                self.model,
                wait=h.timeout,
                interval=h.interval,
                liveness=alive,
                log_tail=tail,
            ),
        ]
        body = self.e.example_body
        if body is not None:
            checks.append(
                HttpCheck(
                    "POST",
                    f"{url}:predict",
                    "tfs-predict",
                    json_body=body,
                    wait=60.0,
                    interval=h.interval,
                    timeout=60.0,
                    liveness=alive,
                    log_tail=tail,
                )
            )
        return checks

    def scrape_target(self, ip: str) -> ScrapeTarget:
        return ScrapeTarget(
            job=job_name(self.cfg.name),
            targets=(f"{ip}:{self.e.rest_port}",),
            metrics_path=METRICS_PATH,
            labels=(("deployment", self.cfg.name), ("engine", "tfserving")),
            scrape_interval=self.cfg.monitoring.scrape_interval,
        )
