"""The state files' layout and a light reader of them: plain dicts and named tuples, no pydantic.

The one home of where a deployment's document lives ($ORCHESTRATOR_HOME/deployments/NAME.json), what makes a file
one of ours (kind, schema_version) and the defaults of its keys. state.py's pydantic models write the documents
(and validate them strictly); the commands that only read state (`status`, `ssh`) read them here, ~130 ms of
pydantic imports cheaper. tests/test_state_doc.py checks that the defaults below are the models' defaults and that
every document StateStore writes reads back here field for field.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from orchestrator.errors import StateError

SCHEMA_VERSION = 1
KIND = "orchestrator/deployment"
DEPLOYMENTS_DIR = "deployments"
SUFFIX = ".json"

# Each record's keys: required ones, and the defaults of the others (state.py's models declare the same).
DEPLOYMENT_REQUIRED = ("name", "config_path")
DEPLOYMENT_DEFAULTS: dict[str, Any] = {
    "kind": KIND,
    "schema_version": SCHEMA_VERSION,
    "status": "deploying",
    "server": None,
    "engine": None,
    "health": None,
    "monitoring": None,  # a MonitoringRecord with its defaults
    "steps": {},
    "last_error": None,
    "auto_stop_at": None,
    "config": {},
    "replicas": [],  # a fleet's servers (RECORDS["replica"]); StateStore leaves the key out when empty
    "network": None,  # a cluster's private network (RECORDS["network"]); StateStore leaves it out when None
    "retired_hours": 0,  # a fleet's deleted servers' started hours; StateStore leaves it out when 0
}
TIME_KEYS = ("created_at", "updated_at")  # default: the time the record was made
RECORDS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "server": (
        ("uuid",),
        {"hostname": "", "plan": "", "zone": "", "ip": None, "state": "", "gpu_amount": 0, "gpu_model": "",
         "host_key": None, "private_ip": None, "created_at": None},
    ),
    "network": (("uuid", "name", "zone", "cidr"), {}),
    "engine": (("kind", "model", "served_name", "endpoint", "metrics_url", "method"), {"pid": None, "config_hash": ""}),
    "health": (("ok", "checked_at", "detail"), {"time_to_healthy": None}),
    "step": (("status", "finished_at", "seconds"), {"note": ""}),
    "monitoring": ((), {"prometheus_config": None, "job": None, "file_sd": None, "run_metrics": None}),
    "replica": (
        ("index",),
        {"status": "deploying", "server": None, "engine": None, "health": None, "steps": {}, "last_error": None,
         "auto_stop_at": None},
    ),
}  # fmt: skip


def orchestrator_home() -> Path:
    """Where everything local lives (state, secrets, scrape config...): $ORCHESTRATOR_HOME, else ~/.orchestrator.

    The one place that decides it; it creates nothing (dry-run and `status` write no files): ensure_home() does.
    """
    return Path(os.environ.get("ORCHESTRATOR_HOME") or Path.home() / ".orchestrator").expanduser().absolute()


def deployments_dir(home: Path) -> Path:
    return home / DEPLOYMENTS_DIR


def document_path(directory: Path, name: str) -> Path:
    return directory / f"{name}{SUFFIX}"


def document_names(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob(f"*{SUFFIX}"))


def bad_file_hint(path: Path) -> str:
    return f"inspect {path}; move it away if it is not yours (nothing was changed)"


def parse_document(path: Path, text: str) -> dict[str, Any]:
    """The JSON object of a state file, if it is one of ours in this schema version; else a StateError."""
    hint = bad_file_hint(path)
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"state file {path} is corrupt (line {exc.lineno}: {exc.msg})", hint) from None
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        raise StateError(f"state file {path} is not an orchestrator deployment document", hint)
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise StateError(
            f"state file {path} has schema_version {raw.get('schema_version')!r}, expected {SCHEMA_VERSION}",
            "upgrade orchestrator, or move the file away",
        )
    return raw


def read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read state file {path}: {exc.strerror}") from None


def _record(path: Path, where: str, kind: str, value: object) -> dict[str, Any]:
    required, defaults = RECORDS[kind]
    if not isinstance(value, dict):
        raise StateError(f"state file {path} is invalid at {where}: Input should be an object", bad_file_hint(path))
    for key in required:
        if key not in value:
            raise StateError(f"state file {path} is invalid at {where}.{key}: Field required", bad_file_hint(path))
    return {**defaults, **value}


def normalized(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """The document with every default filled in, as the pydantic model would dump it (mode="json")."""
    for key in DEPLOYMENT_REQUIRED:
        if key not in raw:
            raise StateError(f"state file {path} is invalid at {key}: Field required", bad_file_hint(path))
    now = time.time()
    doc: dict[str, Any] = {**DEPLOYMENT_DEFAULTS, **{k: now for k in TIME_KEYS}, **raw}
    _server_fields(path, "", doc)
    doc["monitoring"] = _record(path, "monitoring", "monitoring", doc["monitoring"] or {})
    if doc["network"] is not None:
        doc["network"] = _record(path, "network", "network", doc["network"])
    replicas = doc["replicas"] if isinstance(doc["replicas"], list) else []
    doc["replicas"] = [
        _server_fields(path, f"replicas.{i}.", _record(path, f"replicas.{i}", "replica", r))
        for i, r in enumerate(replicas)
    ]
    return doc


def _server_fields(path: Path, where: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The per-server records (a deployment's, or one replica's) with their defaults filled in."""
    for key in ("server", "engine", "health"):
        if doc[key] is not None:
            doc[key] = _record(path, where + key, key, doc[key])
    steps = doc["steps"] if isinstance(doc["steps"], dict) else {}
    doc["steps"] = {k: _record(path, f"{where}steps.{k}", "step", v) for k, v in steps.items()}
    return doc


class ServerView(NamedTuple):
    uuid: str
    hostname: str
    plan: str
    zone: str
    ip: str | None
    state: str
    host_key: str | None
    private_ip: str | None  # a Ray cluster's node: its address on the private network
    created_at: float | None  # when recorded: the server's cost counts from here (None: the deployment's)


class EngineView(NamedTuple):
    kind: str
    model: str
    served_name: str
    endpoint: str
    metrics_url: str
    method: str


class HealthView(NamedTuple):
    ok: bool
    checked_at: float
    detail: str
    time_to_healthy: float | None


class ReplicaView(NamedTuple):
    """One server of a fleet, as the read-only commands use it (``number``: the record's 1-based ``index``)."""

    number: int
    status: str
    auto_stop_at: float | None
    last_error: str | None
    server: ServerView | None
    engine: EngineView | None
    health: HealthView | None


class DeploymentView(NamedTuple):
    """What the read-only commands use of a deployment's document (``document``: all of it, defaults filled).

    Named tuples, not dataclasses: `dataclasses` imports `inspect`, ~15 ms of a 100 ms start-up budget."""

    name: str
    config_path: str
    status: str
    created_at: float
    updated_at: float
    auto_stop_at: float | None
    last_error: str | None
    server: ServerView | None
    engine: EngineView | None
    health: HealthView | None
    config: dict[str, Any]
    document: dict[str, Any]
    replicas: list[ReplicaView]  # a fleet's servers (config `replicas` > 1); [] for one server


def _view(cls: type[Any], record: dict[str, Any] | None) -> Any:
    if record is None:
        return None
    return cls(**{f: record[f] for f in cls._fields})


def view(doc: dict[str, Any]) -> DeploymentView:
    return DeploymentView(
        name=doc["name"],
        config_path=doc["config_path"],
        status=doc["status"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        auto_stop_at=doc["auto_stop_at"],
        last_error=doc["last_error"],
        server=_view(ServerView, doc["server"]),
        engine=_view(EngineView, doc["engine"]),
        health=_view(HealthView, doc["health"]),
        config=doc["config"] if isinstance(doc["config"], dict) else {},
        document=doc,
        replicas=[_replica_view(r) for r in doc["replicas"]],
    )


def _replica_view(r: dict[str, Any]) -> ReplicaView:
    return ReplicaView(
        number=r["index"],
        status=r["status"],
        auto_stop_at=r["auto_stop_at"],
        last_error=r["last_error"],
        server=_view(ServerView, r["server"]),
        engine=_view(EngineView, r["engine"]),
        health=_view(HealthView, r["health"]),
    )


class StateReader:
    """Reads deployment documents without pydantic; StateStore (state.py) is the writer."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or orchestrator_home()
        self.dir = deployments_dir(self.home)

    def load(self, name: str) -> DeploymentView | None:
        path = document_path(self.dir, name)
        text = read_text(path)
        if text is None:
            return None
        return view(normalized(path, parse_document(path, text)))

    def names(self) -> list[str]:
        return document_names(self.dir)

    def all_readable(self) -> tuple[list[DeploymentView], list[StateError]]:
        """Every deployment whose file can be read, and what stopped each of the others: one bad file does not
        hide the rest (`status` shows them, then fails)."""
        found: list[DeploymentView] = []
        broken: list[StateError] = []
        for name in self.names():
            try:
                one = self.load(name)
            except StateError as exc:
                broken.append(exc)
                continue
            if one is not None:
                found.append(one)
        return found, broken


def unreadable(broken: list[StateError]) -> StateError:
    """The one error for the state files `all_readable` could not read."""
    if len(broken) == 1:
        return broken[0]
    return StateError(
        f"{len(broken)} state files could not be read: " + "; ".join(e.message for e in broken),
        "inspect each; move away those that are not yours (nothing was changed)",
    )
