"""The state store: one JSON document per deployment under $ORCHESTRATOR_HOME, written atomically, mode 0600.

The file layout, the document checks and the keys' defaults are state_doc.py's (the light, pydantic-free reader
of the same files); these models write the documents and validate them strictly.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.atomic import write_atomic
from orchestrator.errors import StateError
from orchestrator.state_doc import (
    KIND,
    SCHEMA_VERSION,
    bad_file_hint,
    deployments_dir,
    document_names,
    document_path,
    orchestrator_home,
    parse_document,
    read_text,
)

__all__ = ["KIND", "SCHEMA_VERSION", "Deployment", "ReplicaRecord", "StateStore", "ensure_home", "orchestrator_home"]


def ensure_home(home: Path | None = None) -> Path:
    """The home, created mode 0700 when missing (its parents with the usual mode). Every writer calls this first.

    An existing directory keeps its mode: $ORCHESTRATOR_HOME may point at a folder the user manages.
    """
    home = home or orchestrator_home()
    if not home.is_dir():
        home.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # a concurrent run made it first
            home.mkdir(mode=0o700)
    return home


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerRecord(Record):
    uuid: str
    hostname: str = ""
    plan: str = ""
    zone: str = ""
    ip: str | None = None
    state: str = ""
    gpu_amount: int = 0
    gpu_model: str = ""
    host_key: str | None = None  # "ssh-ed25519 AAAA..." pinned on first contact
    private_ip: str | None = None  # on the cluster's private network (config `cluster`), else absent
    created_at: float | None = None  # when this tool recorded the server (its cost counts from here); older: None


class EngineRecord(Record):
    kind: str
    model: str
    served_name: str
    endpoint: str
    metrics_url: str
    method: str
    pid: int | None = None
    config_hash: str = ""  # of the engine config (no secret values): unchanged + running = nothing to restart


class HealthRecord(Record):
    ok: bool
    checked_at: float
    detail: str
    time_to_healthy: float | None = None


class StepRecord(Record):
    status: str  # ok | failed | skipped
    finished_at: float
    seconds: float
    note: str = ""


class MonitoringRecord(Record):
    prometheus_config: str | None = None
    job: str | None = None
    file_sd: str | None = None
    run_metrics: str | None = None


class NetworkRecord(Record):
    """A cluster's private network (config `cluster`): recorded as soon as it is created, before any server."""

    uuid: str
    name: str
    zone: str
    cidr: str


class ReplicaRecord(Record):
    """One server of a fleet (config `replicas` > 1): the per-server fields of a Deployment, by 1-based index."""

    index: int
    status: str = "deploying"  # deploying | deployed | failed | tearing-down
    server: ServerRecord | None = None
    engine: EngineRecord | None = None
    health: HealthRecord | None = None
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    last_error: str | None = None
    auto_stop_at: float | None = None


class Deployment(Record):
    kind: str = KIND
    schema_version: int = SCHEMA_VERSION
    name: str
    config_path: str
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    status: str = "deploying"  # deploying | deployed | failed | tearing-down
    server: ServerRecord | None = None
    engine: EngineRecord | None = None
    health: HealthRecord | None = None
    monitoring: MonitoringRecord = Field(default_factory=MonitoringRecord)
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    last_error: str | None = None
    auto_stop_at: float | None = None  # provider.ttl: when the on-host timer powers the server off
    config: dict[str, Any] = Field(default_factory=dict)  # snapshot, so `teardown NAME` works without the file
    # A fleet's servers (config `replicas` > 1); empty, and absent from the file, for a single-server deployment.
    replicas: list[ReplicaRecord] = Field(default_factory=list)
    # A cluster's private network (config `cluster`); absent otherwise.
    network: NetworkRecord | None = None
    # Started hours of this fleet's servers already deleted (scaled down): the lifetime cost keeps them. Absent: 0.
    retired_hours: int = 0


def document_text(data: dict[str, Any]) -> str:
    """A state document as written: one top-level key per line and one replica record per line (readable, and
    encoded by json's C encoder: ``indent=`` falls back to the pure-Python one, which a fleet's saves, one per
    step of every replica, would pay for)."""
    enc = json.JSONEncoder(sort_keys=True, separators=(", ", ": ")).encode
    lines = []
    for key in sorted(data):
        value = data[key]
        if key == "replicas" and value:
            records = ",\n".join(f"    {enc(r)}" for r in value)
            lines.append(f"  {enc(key)}: [\n{records}\n  ]")
        else:
            lines.append(f"  {enc(key)}: {enc(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


class StateStore:
    """Reads and writes deployment documents; nothing is opened at import time."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or orchestrator_home()
        self.dir = deployments_dir(self.home)

    def _make_dir(self) -> None:
        ensure_home(self.home)
        self.dir.mkdir(exist_ok=True, mode=0o700)

    def path(self, name: str) -> Path:
        return document_path(self.dir, name)

    def load(self, name: str) -> Deployment | None:
        path = self.path(name)
        text = read_text(path)
        return None if text is None else self._parse(path, text)

    def _parse(self, path: Path, text: str) -> Deployment:
        hint = bad_file_hint(path)
        raw = parse_document(path, text)
        try:
            return Deployment.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise StateError(f"state file {path} is invalid at {where}: {first['msg']}", hint) from None

    def save(self, dep: Deployment) -> Path:
        dep.updated_at = time.time()
        path = self.path(dep.name)
        data = dep.model_dump(mode="json")
        if not data["replicas"]:
            del data["replicas"]  # single-server documents keep the shape they always had
        if data["network"] is None:
            del data["network"]
        if not data["retired_hours"]:
            del data["retired_hours"]
        for srv in [data.get("server"), *(r.get("server") for r in data.get("replicas", []))]:
            if isinstance(srv, dict) and srv.get("private_ip") is None:
                srv.pop("private_ip", None)
        text = document_text(data)
        try:
            self._make_dir()
            write_atomic(path, text, 0o600)
        except OSError as exc:
            raise StateError(
                f"cannot write state file {path}: {exc.strerror}",
                f"make {self.dir} writable (or set ORCHESTRATOR_HOME); the cloud server may exist: "
                "check `upctl server list`",
            ) from None
        return path

    @contextlib.contextmanager
    def lock(self, name: str, command: str) -> Iterator[None]:
        """One deploy/teardown per deployment at a time. flock dies with its holder, so no stale locks."""
        import fcntl
        import socket

        try:
            self._make_dir()
            fh = open(self.dir / f"{name}.lock", "a+")  # noqa: SIM115 - held for the whole with-block
        except OSError as exc:
            raise StateError(f"cannot create lock file in {self.dir}: {exc.strerror}") from None
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another orchestrator process"
                raise StateError(
                    f"deployment {name!r} is busy: {holder}",
                    "wait for it to finish (or stop that process); the lock is released when it exits",
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(
                f"pid {os.getpid()} on {socket.gethostname()} running `orchestrator {command}` "
                f"since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
            )
            fh.flush()
            try:
                yield
            finally:
                fh.seek(0)
                fh.truncate()
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def names(self) -> list[str]:
        return document_names(self.dir)

    def all(self) -> list[Deployment]:
        return [d for d in (self.load(n) for n in self.names()) if d is not None]
