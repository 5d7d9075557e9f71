"""A fleet's state (config `replicas` > 1): one document for the deployment, one ReplicaRecord per server.

Each replica's steps are the single-server steps unchanged, run against a *view*: a Deployment holding that
replica's per-server fields (server, engine, health, steps, last_error, auto_stop_at). Saving the view (every
step's ctx.save()) copies those fields back into the replica's record and writes the fleet's document under one
lock, so a server a replica's provision creates is on disk before anything else can fail, as for one server.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from orchestrator.config import DeploymentConfig
from orchestrator.context import StepContext
from orchestrator.state import Deployment, ReplicaRecord, StateStore

PER_SERVER = ("server", "engine", "health", "steps", "last_error", "auto_stop_at")


def is_fleet(cfg: DeploymentConfig, dep: Deployment) -> bool:
    """A fleet: the config asks for several replicas or a cluster, or the record already holds replicas."""
    return cfg.replicas > 1 or cfg.cluster is not None or bool(dep.replicas)


def replica_hostname(cfg: DeploymentConfig, index: int) -> str:
    """Replica 1 keeps the deployment's hostname (scaling 1 -> N keeps the server); replica I is `<base>-I`."""
    base = cfg.provider.hostname or cfg.name
    return base if index == 1 else f"{base}-{index}"


def replica_config(cfg: DeploymentConfig, index: int) -> DeploymentConfig:
    """The config replica ``index``'s steps see: the fleet's, with the replica's hostname."""
    if index == 1:
        return cfg
    provider = cfg.provider.model_copy(update={"hostname": replica_hostname(cfg, index)})
    return cfg.model_copy(update={"provider": provider})


def label(index: int) -> str:
    return f"r{index}"


@dataclass
class ReplicaContext(StepContext):
    """A StepContext whose save() writes the replica's fields into the fleet's document (Fleet.sync)."""

    fleet: Fleet | None = None
    record: ReplicaRecord | None = None

    def save(self) -> None:
        if self.fleet is not None and self.record is not None:
            self.fleet.sync(self.record, self.dep)


class Fleet:
    """The fleet's document, its replica records, and the lock every save of it takes."""

    def __init__(self, dep: Deployment, store: StateStore | None) -> None:
        self.dep = dep
        self.store = store
        self.lock = threading.Lock()

    def adopt_single(self) -> bool:
        """A single-server deployment scaled to N: its top-level server becomes replica 1 (kept, not replaced)."""
        d = self.dep
        if d.replicas or (d.server is None and d.engine is None):
            return False
        one = ReplicaRecord(index=1, status=d.status)
        for key in PER_SERVER:
            setattr(one, key, getattr(d, key))
        d.server = d.engine = d.health = None
        d.steps, d.last_error, d.auto_stop_at = {}, None, None
        d.replicas = [one]
        return True

    def record(self, index: int) -> ReplicaRecord:
        """Replica ``index``'s record, made (and kept in index order) when it is new."""
        with self.lock:
            for rec in self.dep.replicas:
                if rec.index == index:
                    return rec
            rec = ReplicaRecord(index=index)
            self.dep.replicas = sorted([*self.dep.replicas, rec], key=lambda r: r.index)
            return rec

    def view(self, rec: ReplicaRecord) -> Deployment:
        d = self.dep
        return Deployment(
            name=d.name,
            config_path=d.config_path,
            created_at=d.created_at,
            status=rec.status,
            config=d.config,
            monitoring=d.monitoring.model_copy(),
            **{key: getattr(rec, key) for key in PER_SERVER},
        )

    def sync(self, rec: ReplicaRecord, view: Deployment) -> None:
        with self.lock:
            for key in PER_SERVER:
                setattr(rec, key, getattr(view, key))
            self._save()

    def set_status(self, rec: ReplicaRecord, status: str) -> None:
        with self.lock:
            rec.status = status
            self._save()

    def billing_since(self, rec: ReplicaRecord) -> float | None:
        """When the replica's server started billing; None: it has none."""
        from orchestrator.cost import billing_since

        return None if rec.server is None else billing_since(rec.server.created_at, self.dep.created_at)

    def drop(self, rec: ReplicaRecord, since: float | None = None) -> None:
        """Forget a replica whose server is confirmed gone; its started hours (billed from ``since``, taken
        before its teardown cleared the server record) stay in the lifetime cost."""
        from orchestrator.cost import billed_hours

        with self.lock:
            if since is not None:
                self.dep.retired_hours += billed_hours(time.time() - since)
            self.dep.replicas = [r for r in self.dep.replicas if r is not rec]
            self._save()

    def save(self) -> None:
        with self.lock:
            self._save()

    def _save(self) -> None:
        if self.store is not None:  # None in a dry run: nothing is persisted
            self.store.save(self.dep)
