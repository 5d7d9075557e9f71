"""Fleets without a cloud: the dry-run plan of a `replicas` config, the replica view of the state document, both
state readers on a fleet's document, the replica label, and `status` rows per replica."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from orchestrator.config import DeploymentConfig
from orchestrator.fleet_state import Fleet, ReplicaContext, replica_config, replica_hostname
from orchestrator.providers.base import REPLICA_LABEL_KEY, ServerInfo, server_labels
from orchestrator.state import Deployment, EngineRecord, HealthRecord, ReplicaRecord, ServerRecord, StateStore
from orchestrator.state_doc import RECORDS, StateReader
from tests.conftest import REPO, run_cli


def _config(tmp_path: Path, replicas: int, **extra: object) -> Path:
    key = tmp_path / "id_ed25519"
    key.write_text("not a key: a dry run never reads it\n")
    (tmp_path / "id_ed25519.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlannedPlannedPlannedPlanned x\n")
    data = {
        "name": "fleet",
        "replicas": replicas,
        "ssh": {"private_key": str(key)},
        "engine": {"kind": "vllm", "model": "Qwen/Qwen2.5-0.5B-Instruct"},
        "monitoring": {"prometheus_config": str(tmp_path / "prometheus.yml"), "file_sd_dir": str(tmp_path / "sd"),
                       "promtool": "never"},
        **extra,
    }  # fmt: skip
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_dry_run_plans_every_replica_then_one_scrape_job(tmp_path: Path) -> None:
    proc = run_cli("deploy", str(_config(tmp_path, 3)), "--dry-run", env={"ORCHESTRATOR_HOME": str(tmp_path / "h")})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    creates = [ln for ln in out.splitlines() if "upctl server create" in ln]
    assert [ln.split()[0] for ln in creates] == ["[r1]", "[r2]", "[r3]"]
    hostnames = [re.search(r"--hostname (\S+)", ln).group(1) for ln in creates]  # type: ignore[union-attr]
    assert hostnames == ["fleet", "fleet-2", "fleet-3"]
    assert all(f"--label {REPLICA_LABEL_KEY}={i}" in ln for i, ln in enumerate(creates, 1))
    # each replica's plan is the single-server plan: the same steps, each replica its own SSH connection
    for i in (1, 2, 3):
        steps = re.findall(rf"^\[r{i}\] \[\d+/12\] (\S+)$", out, re.M)
        assert steps[0] == "provision" and steps[-1] == "monitoring" and len(steps) == 12
        assert re.search(rf"^\[r{i}\] +\d+\. ssh: connect", out, re.M)
    # then the fleet's one scrape job, once, with every replica as a target
    fleet_lines = [ln for ln in out.splitlines() if not ln.startswith("[r")]
    assert sum(1 for ln in fleet_lines if re.match(r"^\[1/1\] monitoring$", ln)) == 1
    assert "-> 3 targets/metrics" in out
    assert "(3 replicas); nothing was changed" in out
    assert not (tmp_path / "h").exists() and not (tmp_path / "prometheus.yml").exists()


def test_single_replica_plan_is_unchanged(tmp_path: Path) -> None:
    one = run_cli("deploy", str(_config(tmp_path, 1)), "--dry-run", env={"ORCHESTRATOR_HOME": str(tmp_path / "h")})
    assert one.returncode == 0, one.stderr
    assert "[r1]" not in one.stdout and REPLICA_LABEL_KEY not in one.stdout
    data = yaml.safe_load((tmp_path / "fleet.yaml").read_text())
    del data["replicas"]
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(data))
    plain = run_cli("deploy", str(tmp_path / "fleet.yaml"), "--dry-run", env={"ORCHESTRATOR_HOME": str(tmp_path / "h")})
    assert plain.stdout == one.stdout


@pytest.mark.parametrize("value", [0, 33])
def test_replicas_is_bounded(tmp_path: Path, value: int) -> None:
    proc = run_cli("validate", str(_config(tmp_path, value)))
    assert proc.returncode == 2 and "replicas" in proc.stderr


def test_replica_config_and_labels() -> None:
    cfg = DeploymentConfig.model_validate({"name": "web", "replicas": 3, "engine": {"model": "m"}})
    assert replica_config(cfg, 1) is cfg
    assert replica_config(cfg, 3).provider.hostname == "web-3" == replica_hostname(cfg, 3)
    named = cfg.model_copy(update={"provider": cfg.provider.model_copy(update={"hostname": "gpu"})})
    assert [replica_hostname(named, i) for i in (1, 2)] == ["gpu", "gpu-2"]
    labels = dict(server_labels("web", (), {}, 2))
    assert labels[REPLICA_LABEL_KEY] == "2" and labels["orchestrator_deployment"] == "web"
    assert REPLICA_LABEL_KEY not in dict(server_labels("web", (), {}))
    info = ServerInfo("00aa", "web-2", "", "started", "p", "z", labels=labels)
    assert info.replica == 2 and info.deployment == "web"


def _server(uuid: str, ip: str) -> ServerRecord:
    return ServerRecord(uuid=uuid, hostname="h", plan="p", zone="z", ip=ip, state="started", host_key="ssh-ed25519 K")


def test_a_replica_view_saves_into_the_fleet_document(tmp_path: Path) -> None:
    """Steps change the view's fields and call ctx.save(); the fleet's document on disk has them at once."""
    store = StateStore(tmp_path)
    dep = Deployment(name="web", config_path="/w.yaml", status="deploying")
    fleet = Fleet(dep, store)
    r2 = fleet.record(2)
    r1 = fleet.record(1)
    assert [r.index for r in dep.replicas] == [1, 2] and fleet.record(2) is r2
    cfg = DeploymentConfig.model_validate({"name": "web", "replicas": 2, "engine": {"model": "m"}})
    ctx = ReplicaContext(cfg=replica_config(cfg, 2), dep=fleet.view(r2), store=store, replica=2, fleet=fleet, record=r2)
    ctx.dep.server = _server("00bb", "127.0.0.12")  # what provision records right after the create
    ctx.save()
    on_disk = json.loads(store.path("web").read_text())
    assert on_disk["replicas"][1]["server"]["uuid"] == "00bb" and on_disk["replicas"][0]["server"] is None
    assert on_disk["server"] is None and ctx.host_name == "web-r2" and ctx.ip == "127.0.0.12"
    fleet.set_status(r1, "failed")
    fleet.drop(r2)
    on_disk = json.loads(store.path("web").read_text())
    assert [(r["index"], r["status"]) for r in on_disk["replicas"]] == [(1, "failed")]


def test_scaling_a_single_server_keeps_it_as_replica_one() -> None:
    dep = Deployment(
        name="web", config_path="/w.yaml", status="deployed", server=_server("00aa", "127.0.0.11"),
        health=HealthRecord(ok=True, checked_at=1.0, detail="ok"), auto_stop_at=5.0,
    )  # fmt: skip
    fleet = Fleet(dep, None)
    assert fleet.adopt_single() and not fleet.adopt_single()
    assert dep.server is None and dep.health is None and dep.auto_stop_at is None
    (one,) = dep.replicas
    assert (one.index, one.status, one.server and one.server.uuid, one.auto_stop_at) == (1, "deployed", "00aa", 5.0)


def test_single_server_documents_keep_their_shape(tmp_path: Path) -> None:
    StateStore(tmp_path).save(Deployment(name="one", config_path="/o.yaml"))
    assert "replicas" not in json.loads(StateStore(tmp_path).path("one").read_text())


def test_the_replica_record_defaults_are_the_models() -> None:
    fields = ReplicaRecord.model_fields.items()
    assert set(RECORDS["replica"][0]) == {k for k, f in fields if f.is_required()}
    assert RECORDS["replica"][1] == {k: f.get_default(call_default_factory=True) for k, f in fields
                                     if not f.is_required()}  # fmt: skip


def _fleet_doc() -> Deployment:
    eng = EngineRecord(kind="vllm", model="m", served_name="s", endpoint="http://127.0.0.11:8000/v1",
                       metrics_url="http://127.0.0.11:8000/metrics", method="docker")  # fmt: skip
    return Deployment(
        name="web", config_path="/w.yaml", status="deployed", created_at=1700000000.0,
        replicas=[
            ReplicaRecord(index=1, status="deployed", server=_server("00aa", "127.0.0.11"), engine=eng,
                          health=HealthRecord(ok=True, checked_at=1700000100.0, detail="ok")),
            ReplicaRecord(index=2, status="failed", last_error="health: boom"),
        ],
    )  # fmt: skip


def test_both_readers_agree_on_a_fleet_document(tmp_path: Path) -> None:
    StateStore(tmp_path).save(_fleet_doc())
    stored = StateStore(tmp_path).load("web")
    light = StateReader(tmp_path).load("web")
    assert stored is not None and light is not None
    assert light.document == stored.model_dump(mode="json")
    assert [(r.number, r.status, r.server.uuid if r.server else None) for r in light.replicas] == [
        (1, "deployed", "00aa"),
        (2, "failed", None),
    ]


def test_status_shows_one_row_per_replica(tmp_path: Path) -> None:
    StateStore(tmp_path).save(_fleet_doc())
    env = {"ORCHESTRATOR_HOME": str(tmp_path)}
    table = run_cli("status", "--local", env=env, cwd=REPO).stdout.splitlines()
    assert [ln.split()[:2] for ln in table[1:]] == [["web/r1", "deployed"], ["web/r2", "failed"]]
    doc = json.loads(run_cli("status", "web", "--local", "--json", env=env).stdout)[0]
    assert [r["index"] for r in doc["replicas"]] == [1, 2] and doc["server"] is None
    assert doc["replicas"][0]["health"]["checked_at"].endswith("Z")  # times in ISO-8601 like the rest


def test_ssh_reaches_replica_one_of_a_fleet(tmp_path: Path) -> None:
    doc = _fleet_doc().model_copy(update={"config": {"ssh": {"user": "root", "port": 22, "private_key": "/k/id"}}})
    StateStore(tmp_path).save(doc)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ssh").write_text('#!/bin/sh\necho "ssh $*"\n')  # OpenSSH's place: print the argv
    (tmp_path / "bin" / "ssh").chmod(0o755)
    env = {"ORCHESTRATOR_HOME": str(tmp_path), "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    proc = run_cli("ssh", "web", "--", "true", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "root@127.0.0.11 true" in proc.stdout
    assert "127.0.0.11 ssh-ed25519 K orchestrator:web" in (tmp_path / "known_hosts").read_text()


def test_the_fleet_scrape_jobs_list_every_serving_replica(tmp_path: Path) -> None:
    """The fleet's monitoring run: one engine job, one DCGM job, one node-exporter job, each with every replica."""
    from orchestrator.actions import ReadLocal, Result, WriteLocal
    from orchestrator.context import StepContext
    from orchestrator.steps.monitoring import FLEET_IPS, monitoring

    cfg = DeploymentConfig.model_validate({
        "name": "web", "replicas": 2, "engine": {"model": "m"},
        "monitoring": {"prometheus_config": str(tmp_path / "prometheus.yml"), "file_sd_dir": str(tmp_path / "sd"),
                       "dcgm_exporter": True, "node_exporter": True, "promtool": "never"},
    })  # fmt: skip
    ctx = StepContext(cfg=cfg, dep=Deployment(name="web", config_path="/w.yaml"), store=None,
                      facts={FLEET_IPS: ["127.0.0.11", "127.0.0.12"]})  # fmt: skip
    written: dict[str, str] = {}
    kinds: list[str] = []
    gen = monitoring(ctx)
    try:
        action = next(gen)
        while True:
            kinds.append(type(action).__name__)
            if isinstance(action, WriteLocal):
                written[str(action.path)] = action.content
            missing = isinstance(action, ReadLocal)
            action = gen.send(Result(rc=1 if missing else 0, stderr="No such file" if missing else ""))
    except StopIteration as stop:
        note = str(stop.value)
    assert "-> 2 targets" in note and "Remote" not in kinds  # the replicas' own runs started the exporters
    prom = yaml.safe_load(written[str(tmp_path / "prometheus.yml")])
    jobs = {j["job_name"]: [t for g in j["static_configs"] for t in g["targets"]] for j in prom["scrape_configs"]}
    assert jobs == {
        "orchestrator-web": ["127.0.0.11:8000", "127.0.0.12:8000"],
        "orchestrator-web-gpu": ["127.0.0.11:9400", "127.0.0.12:9400"],
        "orchestrator-web-node": ["127.0.0.11:9100", "127.0.0.12:9100"],
    }
    sd = json.loads(written[str(tmp_path / "sd" / "orchestrator-web.json")])
    assert sorted(t for g in sd for t in g["targets"]) == sorted(t for ts in jobs.values() for t in ts)
