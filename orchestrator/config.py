"""Deployment config: pydantic models for configs/*.yaml, loaded with file:line in every error."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from orchestrator.cluster_config import ClusterConfig
from orchestrator.config_types import Strict, VenvPath
from orchestrator.durations import Duration
from orchestrator.engine_config import DockerEngineConfig, TfServingConfig, TritonConfig
from orchestrator.errors import ConfigError
from orchestrator.model_files import ModelFilesError
from orchestrator.ports import clash
from orchestrator.state import orchestrator_home
from orchestrator.yamlpos import load_with_lines, nearest_line

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
RETIRED_ENGINES = {
    "torchserve": "TorchServe was archived in August 2025 (limited maintenance); use engine.kind: vllm for LLMs"
    " (or Triton for other models).",
}
ENGINE_KINDS = ("vllm", "triton", "tfserving")


class Fallback(Strict):
    plan: str | None = Field(default=None, description="plan name or regex; default: provider.plan")
    zone: str | None = Field(default=None, description="zone; default: provider.zone")


class FirewallConfig(Strict):
    enabled: bool = Field(default=True, description="UpCloud firewall: SSH and engine ports only from `allow`")
    allow: list[str] = Field(default_factory=list, description="CIDRs; default: the operator's address")

    @field_validator("allow")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR such as 203.0.113.7/32") from None
        return v

    @property
    def everyone(self) -> list[str]:
        """The entries of ``allow`` that admit every address (0.0.0.0/0, ::/0)."""
        return [a for a in self.allow if ipaddress.ip_network(a, strict=False).prefixlen == 0]


class ProviderConfig(Strict):
    kind: Literal["upcloud"] = "upcloud"
    zone: str = "fi-hel2"
    plan: str = Field(default="^GPU-8xCPU-64GB-1xL40S$", description="exact plan name or a regex (full match)")
    template: str = Field(
        default="Ubuntu Server 24.04 LTS (Noble Numbat)",
        description="OS template: UUID, exact title or regex",
    )
    storage_gb: int = Field(default=100, ge=25, le=4096, description="OS disk size; GPU plans include none")
    hostname: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    wait_started: Duration = Field(default=900.0, description="how long to wait for state 'started'")
    fallbacks: list[Fallback] = Field(default_factory=list, description="tried in order when there is no capacity")
    ttl: Duration | None = Field(default=None, description="power the server off after this long (on-host timer)")
    firewall: FirewallConfig = Field(default_factory=FirewallConfig)
    price_per_hour: float | None = Field(
        default=None, ge=0, description="the plan's price per hour, from UpCloud's pricing page (upctl prints none)"
    )
    currency: str = Field(default="EUR", description="the currency of price_per_hour")


class SshConfig(Strict):
    user: str = "root"
    port: int = Field(default=22, ge=1, le=65535)
    private_key: str = "~/.ssh/id_ed25519"
    public_key: str | None = Field(default=None, description="defaults to private_key + '.pub'")
    connect_timeout: Duration = 600.0
    passphrase_env: str | None = Field(
        default="ORCHESTRATOR_SSH_PASSPHRASE",
        description="env var with the private key's passphrase (else ssh-agent, or a prompt on a terminal)",
    )
    keepalive: Duration = Field(default=15.0, description="SSH keepalive interval; 0 turns keepalives off")

    @field_validator("passphrase_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError("must be an environment variable name")
        return v

    @property
    def private_key_path(self) -> Path:
        return Path(self.private_key).expanduser()

    @property
    def public_key_path(self) -> Path:
        return Path(self.public_key).expanduser() if self.public_key else Path(str(self.private_key_path) + ".pub")


class GpuConfig(Strict):
    count: int | None = Field(default=None, ge=1, le=16, description="defaults to the plan's gpu_amount")
    model: str | None = Field(default=None, description="defaults to the plan's gpu_model")


class InstallConfig(Strict):
    method: Literal["pip", "docker", "none"] = "pip"
    version: str | None = Field(default=None, description="vLLM version for pip, e.g. 0.11.0")
    venv: VenvPath = Field(default="vllm-venv", description="venv path on the host; relative = under the login home")
    image: str = "vllm/vllm-openai:latest"

    @field_validator("version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v):
            raise ValueError("must look like a version number, e.g. 0.11.0")
        return v


class HealthConfig(Strict):
    timeout: Duration = Field(default=1800.0, description="first start may download weights: 30 min")
    interval: Duration = 2.0
    completion_check: bool = True


class EngineConfig(Strict):
    kind: Literal["vllm"] = "vllm"
    model: str = Field(min_length=1, description="HF repo id or a path on the host")
    served_name: str | None = None
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    max_model_len: int | None = Field(default=None, ge=16)
    gpu_memory_utilization: float = Field(default=0.9, gt=0.0, le=1.0)
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] = "auto"
    extra_args: list[str] = Field(default_factory=list)
    api_key_env: str | None = Field(default="VLLM_API_KEY", description="local env var holding the API key")
    hf_token_env: str | None = "HF_TOKEN"
    install: InstallConfig = Field(default_factory=InstallConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)

    @property
    def served(self) -> str:
        return self.served_name or self.model

    @field_validator("model", "served_name")
    @classmethod
    def _no_control(cls, v: str | None) -> str | None:
        if v is not None and any(ord(c) < 32 for c in v):
            raise ValueError("must not contain control characters")
        return v

    @field_validator("api_key_env", "hf_token_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError("must be an environment variable name")
        return v


AnyEngineConfig = Annotated[EngineConfig | TritonConfig | TfServingConfig, Field(discriminator="kind")]


class MonitoringConfig(Strict):
    prometheus_config: str | None = Field(
        default_factory=lambda: str(orchestrator_home() / "prometheus" / "prometheus.yml"),
        description="prometheus.yml to merge the job into (default: $ORCHESTRATOR_HOME/prometheus/prometheus.yml)",
    )
    file_sd_dir: str | None = Field(default=None, description="also write a file_sd JSON target file here")
    scrape_interval: str = "15s"
    promtool: Literal["auto", "always", "never"] = "auto"
    reload_url: str | None = Field(
        default=None, description="POST here after writing (Prometheus started with --web.enable-lifecycle)"
    )
    run_metrics: bool = True
    alerts: bool = Field(
        default=True, description="write alerting rules beside prometheus.yml and reference them from rule_files"
    )
    alert_waiting_requests: int = Field(default=10, ge=0, description="alert when more requests wait for 5m")
    grafana_dir: str | None = Field(
        default=None, description="write Grafana provisioning (datasource, dashboards provider, dashboards) here"
    )
    prometheus_url: str = Field(
        default="http://localhost:9090", description="the Prometheus URL the provisioned Grafana datasource uses"
    )
    dcgm_exporter: bool = Field(
        default=False, description="run NVIDIA's DCGM exporter (docker, port 9400) on the server, with its own job"
    )
    dcgm_image: str = Field(
        default="nvcr.io/nvidia/k8s/dcgm-exporter:4.5.3-4.8.2-distroless", description="the DCGM exporter image"
    )
    node_exporter: bool = Field(
        default=False,
        description="install prometheus-node-exporter (Ubuntu package, port 9100) on the server, with its own job",
    )

    @field_validator("scrape_interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9]+(ms|s|m|h)", v):
            raise ValueError("must be a Prometheus duration such as 15s or 1m")
        return v


class PyTorchConfig(Strict):
    enabled: bool = False
    version: str | None = Field(default=None, description="torch version, e.g. 2.9.1; latest when unset")
    cuda: Literal["auto", "cu126", "cu128", "cu130"] = Field(
        default="auto", description="wheel index; auto = the newest the driver's CUDA supports"
    )
    venv: VenvPath = Field(default="torch-venv", description="venv path on the host; relative = under the login home")
    index_url: str = Field(default="https://download.pytorch.org/whl", description="base of the cuXYZ indexes")

    @field_validator("version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9][0-9A-Za-z.!]*", v):
            raise ValueError("must look like a version number, e.g. 2.9.1 (the +cuXYZ part comes from cuda)")
        return v

    @field_validator("index_url")
    @classmethod
    def _index(cls, v: str) -> str:
        if not re.fullmatch(r"(https?|file)://\S+", v):
            raise ValueError("must be an http(s):// or file:// URL")
        return v.rstrip("/")


class TensorFlowConfig(Strict):
    enabled: bool = False
    version: str = Field(default="2.20.0", description="installed as tensorflow[and-cuda]==VERSION")
    venv: VenvPath = Field(default="tf-venv", description="venv path on the host; relative = under the login home")

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9][0-9A-Za-z.!+]*", v):
            raise ValueError("must look like a version number, e.g. 2.20.0")
        return v


class HostConfig(Strict):
    install_missing: bool = Field(default=True, description="false: only detect, and fail when something is missing")
    driver_branch: str = Field(default="580", pattern=r"^[0-9]{3}$", description="NVIDIA server driver branch")
    reboot_timeout: Duration = Field(default=900.0, description="how long a reboot after a driver install may take")
    pytorch: PyTorchConfig = Field(default_factory=PyTorchConfig)
    tensorflow: TensorFlowConfig = Field(default_factory=TensorFlowConfig)
    compile_check: bool = Field(default=False, description="time eager vs torch.compile / XLA jit_compile")


class DeploymentConfig(Strict):
    name: str
    provider: ProviderConfig = Field(default_factory=ProviderConfig)
    ssh: SshConfig = Field(default_factory=SshConfig)
    gpu: GpuConfig = Field(default_factory=GpuConfig)
    engine: AnyEngineConfig
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    host: HostConfig = Field(default_factory=HostConfig)
    cluster: ClusterConfig | None = Field(default=None, description="serve through a Ray cluster (vLLM only)")
    replicas: int = Field(default=1, ge=1, le=32, description="servers serving the same model (a fleet)")
    parallel: int = Field(default=8, ge=1, description="replicas worked on at once (deploy, teardown)")
    secrets_file: str | None = Field(
        default=None, description="KEY=VALUE file (mode 0600) read when a variable is not in the environment"
    )

    @property
    def servers(self) -> int:
        """How many servers it runs: a cluster's nodes, else its replicas (1 for one server)."""
        return self.cluster.nodes if self.cluster is not None else self.replicas

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("must be 2-40 chars of a-z, 0-9 and '-', starting with a letter")
        return v

    @model_validator(mode="after")
    def _cluster_engine(self) -> DeploymentConfig:
        c = self.cluster
        if c is None:
            return self
        if not isinstance(self.engine, EngineConfig):
            raise ValueError(f"cluster.kind ray serves vLLM only (Ray Serve LLM), not engine.kind {self.engine.kind}")
        if self.engine.install.method == "docker":
            raise ValueError("under cluster.kind ray, vLLM runs inside Ray (ray[llm]), not from engine.install docker")
        if self.engine.extra_args:
            raise ValueError("engine.extra_args are vLLM CLI flags; under Ray give them as cluster.engine_kwargs")
        if self.replicas != 1:
            raise ValueError("a cluster's servers are cluster.nodes; leave replicas out (Serve scales replicas)")
        if self.provider.firewall.everyone:
            raise ValueError(
                f"a cluster's firewall opens Ray's dashboard (port {c.ports.dashboard}), whose Jobs API runs any code "
                "sent to it: never to everyone; list your own addresses in provider.firewall.allow"
            )
        zones = {f.zone for f in self.provider.fallbacks if f.zone and f.zone != self.provider.zone}
        if zones:
            raise ValueError(
                f"a cluster's servers share one private network in provider.zone ({self.provider.zone}); "
                f"provider.fallbacks may change the plan, not the zone ({', '.join(sorted(zones))})"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _retired_engines(cls, data: Any) -> Any:
        engine = data.get("engine") if isinstance(data, dict) else None
        kind = engine.get("kind") if isinstance(engine, dict) else None
        if isinstance(kind, str) and kind.lower() in RETIRED_ENGINES:
            raise ValueError(f"engine.kind {kind!r} is not supported: {RETIRED_ENGINES[kind.lower()]}")
        if isinstance(engine, dict) and "kind" not in engine:
            data = {**data, "engine": {"kind": "vllm", **engine}}  # vllm is the default engine
        return data


def _loc_text(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _engine_error(err: Any) -> tuple[tuple[str | int, ...], str]:
    """Union errors name the engine kind in the location (engine.triton.x): drop it; explain unknown kinds."""
    loc = tuple(err["loc"])
    if loc[:1] == ("engine",) and err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        tag = (err.get("ctx") or {}).get("tag")
        return ("engine", "kind"), f"unknown engine kind {tag!r}; expected one of: {', '.join(ENGINE_KINDS)}"
    if loc[:1] == ("engine",) and len(loc) > 1 and loc[1] in ENGINE_KINDS:
        loc = (loc[0], *loc[2:])
    return loc, err["msg"]


def load_config(path: str | Path, *, check_files: bool = True) -> DeploymentConfig:
    """Load and validate a config file; every problem becomes a ConfigError naming file, line and field.

    ``check_files``: also check local model files (Triton repository, SavedModel); teardown can skip it.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}", "check the path", file=str(p)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", file=str(p)) from None
    data, lines = load_with_lines(text, str(p))
    if not isinstance(data, dict):
        raise ConfigError("the config must be a YAML mapping (key: value)", file=str(p), line=1)
    try:
        cfg = DeploymentConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc, msg = _engine_error(err)
        msg = msg.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {str(loc[-1])!r}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        more = len(exc.errors()) - 1
        hint = "see README.md, section 'Config reference'"
        if more:
            hint = f"{more} more problem(s) after this one; " + hint
        raise ConfigError(msg, hint, file=str(p), line=nearest_line(lines, loc), field=_loc_text(loc)) from None
    taken = clash(cfg)
    if taken is not None:
        field, msg = taken
        loc = tuple(field.split("."))
        raise ConfigError(msg, "give one of them another port", file=str(p), line=nearest_line(lines, loc), field=field)
    cfg = resolve_paths(cfg, p.parent)
    if check_files and isinstance(cfg.engine, DockerEngineConfig):
        try:
            cfg.engine.check_files()
        except ModelFilesError as exc:
            loc = ("engine", exc.field)
            line = nearest_line(lines, loc)
            raise ConfigError(str(exc), exc.hint, file=str(p), line=line, field=_loc_text(loc)) from None
    return cfg


def _resolve(path: str | None, base: Path) -> str | None:
    if path is None or path.startswith(("/", "~")):
        return path
    return str((base / path).resolve())


def resolve_paths(cfg: DeploymentConfig, base: Path) -> DeploymentConfig:
    """Relative local paths in a config are relative to the config file, not to the current directory."""
    ssh = cfg.ssh.model_copy(
        update={
            "private_key": _resolve(cfg.ssh.private_key, base),
            "public_key": _resolve(cfg.ssh.public_key, base),
        }
    )
    mon = cfg.monitoring.model_copy(
        update={
            "prometheus_config": _resolve(cfg.monitoring.prometheus_config, base),
            "file_sd_dir": _resolve(cfg.monitoring.file_sd_dir, base),
            "grafana_dir": _resolve(cfg.monitoring.grafana_dir, base),
        }
    )
    update: dict[str, Any] = {"ssh": ssh, "monitoring": mon, "secrets_file": _resolve(cfg.secrets_file, base)}
    if isinstance(cfg.engine, DockerEngineConfig):
        update["engine"] = cfg.engine.resolved(lambda path: _resolve(path, base) or path)
    return cfg.model_copy(update=update)
