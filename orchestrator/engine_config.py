"""Config models of the docker-only engines (Triton, TF Serving); vLLM's EngineConfig lives in config.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, JsonValue, field_validator, model_validator

from orchestrator.config_types import Strict
from orchestrator.durations import Duration
from orchestrator.model_files import MODEL_NAME_RE, saved_model_versions, triton_models

IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$")


class ServingHealth(Strict):
    timeout: Duration = Field(default=600.0, description="model load time (the image pull is not counted)")
    interval: Duration = 2.0


class DockerEngineConfig(Strict):
    """What every docker-only engine shares: an image, local model files (relative to the config), health."""

    LOCAL_PATHS: ClassVar[tuple[str, ...]] = ()
    image: str
    extra_args: list[str] = Field(default_factory=list)
    health: ServingHealth = Field(default_factory=ServingHealth)

    # The CLI reads these of every engine; docker-only engines take no API key and no HF token.
    api_key_env: ClassVar[None] = None
    hf_token_env: ClassVar[None] = None

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if not IMAGE_RE.match(v):
            raise ValueError("must be an image reference such as registry/repo:tag (lowercase, no spaces)")
        return v

    @field_validator("extra_args")
    @classmethod
    def _args(cls, v: list[str]) -> list[str]:
        if any(any(ord(c) < 32 for c in a) for a in v):
            raise ValueError("must not contain control characters")
        return v

    def resolved(self, resolve: Callable[[str], str]) -> DockerEngineConfig:
        """A copy with LOCAL_PATHS made absolute by ``resolve`` (relative to the config file)."""
        return self.model_copy(update={f: resolve(getattr(self, f)) for f in self.LOCAL_PATHS})

    def check_files(self) -> None:
        """Raise ModelFilesError when the local model files would not load; runs before anything is created."""


def _ports_distinct(*ports: int) -> None:
    if len(set(ports)) != len(ports):
        raise ValueError(f"ports must differ, got {', '.join(map(str, ports))}")


class TritonConfig(DockerEngineConfig):
    LOCAL_PATHS: ClassVar[tuple[str, ...]] = ("model_repository",)
    kind: Literal["triton"]
    image: str = "nvcr.io/nvidia/tritonserver:25.08-py3"
    model_repository: str = Field(min_length=1, description="local directory, uploaded to the server")
    models: list[str] = Field(default_factory=list, description="serve only these (default: every model dir)")
    http_port: int = Field(default=8000, ge=1, le=65535)
    grpc_port: int = Field(default=8001, ge=1, le=65535)
    metrics_port: int = Field(default=8002, ge=1, le=65535)

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if not MODEL_NAME_RE.match(m)]
        if bad:
            raise ValueError(f"not a model directory name: {bad[0]!r}")
        if len(set(v)) != len(v):
            raise ValueError("lists a model twice")
        return v

    @model_validator(mode="after")
    def _ports(self) -> TritonConfig:
        _ports_distinct(self.http_port, self.grpc_port, self.metrics_port)
        return self

    @property
    def model(self) -> str:
        return self.model_repository

    @property
    def served(self) -> str:
        return ", ".join(self.models) if self.models else f"all models in {Path(self.model_repository).name}"

    def check_files(self) -> None:
        triton_models(Path(self.model_repository).expanduser(), self.models)


class TfServingConfig(DockerEngineConfig):
    LOCAL_PATHS: ClassVar[tuple[str, ...]] = ("saved_model",)
    kind: Literal["tfserving"]
    image: str = "tensorflow/serving:2.19.0-gpu"
    saved_model: str = Field(min_length=1, description="local dir holding numeric version dirs (1/, 2/...)")
    model_name: str | None = Field(default=None, description="default: the saved_model directory's name")
    rest_port: int = Field(default=8501, ge=1, le=65535)
    grpc_port: int = Field(default=8500, ge=1, le=65535)
    example_input: dict[str, JsonValue] | None = Field(
        default=None, description='a :predict request body, e.g. {"instances": [[1.0, 2.0]]}'
    )

    @field_validator("model_name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not MODEL_NAME_RE.match(v):
            raise ValueError("must be letters, digits, '_', '.' or '-'")
        return v

    @field_validator("example_input")
    @classmethod
    def _example(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None and not ({"instances", "inputs"} & set(v)):
            raise ValueError('a :predict body needs "instances" (row format) or "inputs" (columnar format)')
        return v

    @model_validator(mode="after")
    def _ports(self) -> TfServingConfig:
        _ports_distinct(self.rest_port, self.grpc_port)
        if self.model_name is None and not MODEL_NAME_RE.match(Path(self.saved_model).name):
            raise ValueError("set model_name: the saved_model directory's name is not usable as one")
        return self

    @property
    def model(self) -> str:
        return self.saved_model

    @property
    def served(self) -> str:
        return self.model_name or Path(self.saved_model).name

    @property
    def example_body(self) -> str | None:
        return json.dumps(self.example_input) if self.example_input is not None else None

    def check_files(self) -> None:
        saved_model_versions(Path(self.saved_model).expanduser())
