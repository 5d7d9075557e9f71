"""Config of a Ray cluster (config `cluster`: vLLM behind Ray Serve LLM): its nodes, Ray's version and ports, the
Serve app's autoscaling and the private network."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from orchestrator.config_types import Strict, VenvPath
from orchestrator.durations import Duration

RAY_VERSION = "2.60.0"  # the Ray every node runs; `ray[llm]==2.60.0` pins vllm==0.29.0


class RayPorts(Strict):
    """Every port a Ray node listens on, pinned so the private network's firewall rules can name them."""

    gcs: int = Field(default=6379, ge=1, le=65535, description="GCS on the head (`ray start --port`)")
    dashboard: int = Field(default=8265, ge=1, le=65535, description="dashboard, Jobs and Serve REST API (head)")
    serve_http: int = Field(default=8000, ge=1, le=65535, description="Serve's HTTP proxy: the OpenAI endpoint")
    metrics_export: int = Field(default=8080, ge=1, le=65535, description="each node's Prometheus endpoint")
    object_manager: int = Field(default=8076, ge=1, le=65535, description="`--object-manager-port` on every node")
    node_manager: int = Field(default=8077, ge=1, le=65535, description="`--node-manager-port` on every node")
    dashboard_agent: int = Field(default=52365, ge=1, le=65535, description="`--dashboard-agent-listen-port`")
    autoscaler_metrics: int = Field(
        default=44217, ge=1, le=65535, description="the head's autoscaler metrics (AUTOSCALER_METRIC_PORT)"
    )
    dashboard_metrics: int = Field(
        default=44227, ge=1, le=65535, description="the head's dashboard metrics (DASHBOARD_METRIC_PORT)"
    )
    min_worker: int = Field(default=10002, ge=1024, le=65535, description="`--min-worker-port`")
    max_worker: int = Field(default=10999, ge=1024, le=65535, description="`--max-worker-port`")

    def singles(self) -> dict[str, int]:
        """Every port but the worker range (min_worker..max_worker), by field name."""
        return {k: v for k, v in self.model_dump().items() if k not in ("min_worker", "max_worker")}

    @model_validator(mode="after")
    def _distinct(self) -> RayPorts:
        if self.min_worker > self.max_worker:
            raise ValueError(f"min_worker ({self.min_worker}) must not exceed max_worker ({self.max_worker})")
        seen: dict[int, str] = {}
        for key, port in self.singles().items():
            if port in seen:
                raise ValueError(f"{key} and {seen[port]} are both port {port}")
            if self.min_worker <= port <= self.max_worker:
                span = f"{self.min_worker}-{self.max_worker}"
                raise ValueError(f"{key} ({port}) lies inside the worker port range {span}")
            seen[port] = key
        return self


class ClusterConfig(Strict):
    """vLLM behind Ray Serve LLM on a Ray cluster of ``nodes`` servers (one head, the rest workers)."""

    kind: Literal["ray"] = "ray"
    nodes: int = Field(default=2, ge=1, le=64, description="servers in the cluster: one head, nodes-1 workers")
    ray_version: str = Field(default=RAY_VERSION, description="the Ray version on every node (checked)")
    package: Literal["ray[llm]", "ray[serve]"] = Field(
        default="ray[llm]", description="what pip installs: ray[llm] brings the vLLM Ray pins (GPU nodes)"
    )
    install: Literal["pip", "none"] = Field(default="pip", description="none: Ray is already in `venv`")
    venv: VenvPath = Field(default="ray-venv", description="venv with ray on each node; relative = under home")
    temp_dir: VenvPath = Field(default="/tmp/ray", description="Ray's --temp-dir on every node; relative = home")
    app_name: str = Field(default="llm_app", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the Serve app")
    import_path: str = Field(
        default="ray.serve.llm:build_openai_app",
        pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$",
        description="module:builder of the Serve app (tests point it at a stand-in)",
    )
    accelerator_type: str | None = Field(
        default="L40S", pattern=r"^[A-Za-z0-9_-]+$", description="LLMConfig.accelerator_type; null: any"
    )
    min_replicas: int = Field(default=1, ge=0, le=1024, description="autoscaling_config.min_replicas")
    max_replicas: int = Field(default=2, ge=1, le=1024, description="autoscaling_config.max_replicas")
    max_ongoing_requests: int | None = Field(
        default=None, ge=1, description="deployment_config.max_ongoing_requests per replica; null: Serve's default"
    )
    engine_kwargs: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="more vLLM engine arguments (snake_case), after those from engine"
    )
    ports: RayPorts = Field(default_factory=RayPorts)
    network_cidr: str = Field(
        default="10.60.0.0/24", description="the private network deploy creates for the cluster (IPv4 range)"
    )
    ready_timeout: Duration = Field(default=1800.0, description="how long Serve may take to reach RUNNING")

    @field_validator("ray_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", v):
            raise ValueError("must be an exact Ray release such as 2.60.0")
        return v

    @field_validator("network_cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        import ipaddress

        try:
            net = ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise ValueError(f"{v!r} is not a CIDR such as 10.60.0.0/24") from None
        if net.version != 4 or not net.is_private:
            raise ValueError("must be a private IPv4 range such as 10.60.0.0/24")
        return str(net)

    @field_validator("engine_kwargs")
    @classmethod
    def _kwargs(cls, v: dict[str, str | int | float | bool]) -> dict[str, str | int | float | bool]:
        bad = [k for k in v if not re.fullmatch(r"[a-z][a-z0-9_]*", k)]
        if bad:
            raise ValueError(f"keys must be vLLM engine argument names in snake_case, not {bad}")
        return v

    @model_validator(mode="after")
    def _replicas(self) -> ClusterConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})")
        return self
