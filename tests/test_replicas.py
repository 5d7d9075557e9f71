"""Fleets end to end on the mock cloud (config `replicas: N`): N servers deployed in parallel, one state document
with a record per replica, one scrape job whose targets are all replicas, `status` per replica, scaling down,
a replica's failure, teardown of all. One mock cloud (3 hosts: real sshd each) for the module."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mockcloud.cloud import MockCloud
from mockcloud.hosts import new_root
from mockcloud.upctl import read_state, set_faults
from tests.conftest import REPO, asking_meanwhile, run_cli
from tests.test_faults import _process_tree

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")

API_KEY = "sk-fleet-planted-key-3b7e1d"
PRICE = 1.5  # provider.price_per_hour (EUR)


@pytest.fixture(scope="module")
def cloud() -> Iterator[MockCloud]:
    root = new_root("orch-fleet-")
    try:
        with MockCloud(root, hosts=3) as c:
            yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def env(cloud: MockCloud, tmp_path: Path) -> Iterator[dict[str, str]]:
    e = cloud.env() | {"ORCHESTRATOR_HOME": str(tmp_path / "home"), "VLLM_API_KEY": API_KEY}
    for h in cloud.hosts:
        h.reset_knobs()
        h.set_knobs(engine_startup_delay=0.3)
    set_faults(cloud.upctl_home)
    yield e
    for uuid in cloud_servers(cloud):  # nothing may be left billing, whatever the test did
        subprocess.run(["upctl", "server", "delete", uuid, "--stop", "--delete-storages"], env=e, capture_output=True)


def cloud_servers(cloud: MockCloud) -> dict[str, dict[str, Any]]:
    servers = read_state(cloud.upctl_home).get("servers") or {}
    if isinstance(servers, list):
        return {s["uuid"]: s for s in servers}
    return dict(servers)


def write_config(cloud: MockCloud, tmp_path: Path, name: str, replicas: int) -> Path:
    data: dict[str, object] = {
        "name": name,
        "replicas": replicas,
        "provider": {"plan": "^GPU-8xCPU-64GB-1xL40S$", "storage_gb": 50, "price_per_hour": PRICE},
        "ssh": {"user": cloud.user, "port": cloud.ssh_port, "private_key": str(cloud.client_key),
                "connect_timeout": "30s"},
        "engine": {
            "kind": "vllm",
            "model": "Qwen/Qwen2.5-0.5B-Instruct",
            "served_name": "qwen-mini",
            "install": {"method": "docker", "image": "vllm/vllm-openai:v0.11.0"},
            "health": {"timeout": "60s", "interval": "0.3s"},
        },
        "monitoring": {
            "prometheus_config": str(tmp_path / "prom" / "prometheus.yml"),
            "scrape_interval": "1s",
            "file_sd_dir": str(tmp_path / "file_sd"),
            "promtool": "never",
        },
    }  # fmt: skip
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def state(tmp_path: Path, name: str) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "home" / "deployments" / f"{name}.json").read_text()))


def tracked(doc: dict[str, Any]) -> set[str]:
    servers = [doc.get("server")] + [r["server"] for r in doc.get("replicas", [])]
    return {s["uuid"] for s in servers if s}


def scrape_targets(tmp_path: Path, job: str) -> list[str]:
    prom = yaml.safe_load((tmp_path / "prom" / "prometheus.yml").read_text())
    jobs = [j for j in prom["scrape_configs"] if j["job_name"] == job]
    return [t for j in jobs for group in j["static_configs"] for t in group["targets"]]


def logging_upctl(env: dict[str, str], tmp_path: Path) -> Path:
    """An `upctl` first on PATH that appends each call's arguments to a file, then runs the fake one."""
    fake = shutil.which("upctl", path=env["PATH"])
    assert fake is not None
    bin_dir, log = tmp_path / "logbin", tmp_path / "upctl-calls.log"
    bin_dir.mkdir()
    (bin_dir / "upctl").write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {fake} "$@"\n')
    (bin_dir / "upctl").chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return log


def test_fleet_deploy_status_scale_down_teardown(cloud: MockCloud, env: dict[str, str], tmp_path: Path) -> None:
    cfg = write_config(cloud, tmp_path, "fleet", 3)
    calls = logging_upctl(env, tmp_path)
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 0, proc.stderr
    # The catalogue and the server listing: read once for the three replicas (shared_reads.py); creates: three.
    made = calls.read_text().splitlines()
    for read in ("server plans", "zone list", "zone devices", "storage list --public --template", "server list"):
        assert sum(line.startswith(read + " ") for line in made) == 1, (read, made)
    assert sum(line.startswith("server create ") for line in made) == 3, made
    # A server this run created has no rules: firewall-access reads none; the firewall step reads each once.
    assert sum(line.startswith("server firewall show ") for line in made) == 3, made
    for i in (1, 2, 3):
        assert f"[r{i}] [12/12] monitoring: ok" in proc.stderr, proc.stderr
    assert "is serving on 3 replica(s)" in proc.stdout

    doc = state(tmp_path, "fleet")
    assert doc["server"] is None and [r["index"] for r in doc["replicas"]] == [1, 2, 3]
    assert all(r["status"] == "deployed" and r["health"]["ok"] and r["server"]["host_key"] for r in doc["replicas"])
    servers = cloud_servers(cloud)
    assert set(servers) == tracked(doc) and len(servers) == 3
    assert sorted(r["server"]["hostname"] for r in doc["replicas"]) == ["fleet", "fleet-2", "fleet-3"]
    labels = {s["uuid"]: {lb["key"]: lb["value"] for lb in s.get("labels", [])} for s in servers.values()}
    assert sorted(lb.get("orchestrator_replica", "") for lb in labels.values()) == ["1", "2", "3"]
    assert {lb["orchestrator_deployment"] for lb in labels.values()} == {"fleet"}

    ips = [f"{r['server']['ip']}:8000" for r in doc["replicas"]]
    assert len(set(ips)) == 3
    assert scrape_targets(tmp_path, "orchestrator-fleet") == ips
    sd = json.loads((tmp_path / "file_sd" / "orchestrator-fleet.json").read_text())
    assert [t for group in sd for t in group["targets"]] == ips

    status = json.loads(run_cli("status", "fleet", "--json", env=env).stdout)[0]
    assert [r["index"] for r in status["replicas"]] == [1, 2, 3]
    assert all(r["live"]["engine_health"]["ok"] and r["live"]["server"]["state"] == "started"
               for r in status["replicas"])  # fmt: skip
    assert status["live"]["healthy"] == 3
    table = run_cli("status", env=env).stdout
    assert all(f"fleet/r{i}" in table for i in (1, 2, 3)), table
    assert f"fleet fleet: 3 of 3 healthy; 3 server(s) at {PRICE:.2f} EUR/h, {3 * PRICE:.2f} EUR so far in all" in table
    known = (tmp_path / "home" / "known_hosts").read_text()
    assert all(tag in known for tag in ("orchestrator:fleet\n", "orchestrator:fleet-r2", "orchestrator:fleet-r3"))

    # NAME/rI reaches replica I (as status names its rows), with that replica's pinned key
    r3 = doc["replicas"][2]["server"]["ip"]
    reach = run_cli("ssh", "--debug", "fleet/r3", "--", "echo", "on-r3", env=env)
    assert reach.returncode == 0 and "on-r3" in reach.stdout, reach.stderr
    assert f"@{r3} " in reach.stdout.splitlines()[0], reach.stdout  # the exec line: user@<replica 3's ip>
    after = (tmp_path / "home" / "known_hosts").read_text()  # r3's entry re-filed under its own name, fleet-r3
    assert sorted(after.splitlines()) == sorted(known.splitlines())
    logs = run_cli("logs", "fleet/r2", "--tail", "50", env=env)
    assert logs.returncode == 0 and "Application startup complete." in logs.stdout, logs.stderr
    every = run_cli("logs", "fleet", "--tail", "50", env=env)  # a whole fleet: every replica's, each line [rI]
    assert every.returncode == 0, every.stderr
    lines = every.stdout.splitlines()
    assert all(any(ln.startswith(f"[r{i}] ") and "Application startup complete." in ln for ln in lines)
               for i in (1, 2, 3)), every.stdout  # fmt: skip
    assert all(ln.startswith(("[r1] ", "[r2] ", "[r3] ")) for ln in lines), every.stdout
    # followed into `head`: when head has its lines and goes, every ssh stops and the command ends, quietly
    cli = shlex.join([sys.executable, "-m", "orchestrator", "logs", "fleet", "-f", "--tail", "20"])
    line = f"{cli} | head -n 2; echo \"rc=${{PIPESTATUS[0]}}\" >&2"
    piped = subprocess.run(["bash", "-c", line], env={**os.environ, **env}, cwd=REPO, capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert len(piped.stdout.splitlines()) == 2 and "rc=0" in piped.stderr, piped.stderr
    assert "Traceback" not in piped.stderr and "Exception" not in piped.stderr, piped.stderr
    # bench NAME loads the whole fleet: its requests answered by every replica's engine
    load = run_cli("bench", "fleet", "--json", "--concurrency", "3", "--requests", "6", "--output-tokens", "2",
                   env=env)  # fmt: skip
    assert load.returncode == 0, load.stderr
    endpoints = [r["engine"]["endpoint"] for r in doc["replicas"]]
    (level,) = json.loads(load.stdout)["levels"]
    assert level["completed_per_endpoint"] == {e: 2 for e in endpoints}, level
    missing = run_cli("ssh", "fleet/r9", "--", "true", env=env)
    assert missing.returncode == 11 and "has no replica r9" in missing.stderr, missing.stderr
    assert "fleet/r1, fleet/r2, fleet/r3" in missing.stderr
    # extend re-arms every replica's timer (NAME/rI: only that one's)
    before = time.time()
    extended = run_cli("extend", "fleet", "2h", env=env)
    assert extended.returncode == 0, extended.stderr
    assert all(f"fleet/r{i} powers itself off in" in extended.stdout for i in (1, 2, 3)), extended.stdout
    stops = [r["auto_stop_at"] for r in state(tmp_path, "fleet")["replicas"]]
    assert all(s is not None and before + 7200 - 1 <= s <= time.time() + 7200 + 1 for s in stops), stops
    one = run_cli("extend", "fleet/r2", "3h", env=env)
    assert one.returncode == 0 and "fleet/r2 powers itself off in" in one.stdout and "r1" not in one.stdout
    again = [r["auto_stop_at"] for r in state(tmp_path, "fleet")["replicas"]]
    assert again[0] == stops[0] and again[2] == stops[2] and again[1] > stops[1] + 3000

    # redeploy is rolling: each replica healthy again before the next one is touched
    rolled = run_cli("redeploy", str(cfg), env=env)
    assert rolled.returncode == 0, rolled.stderr
    err = rolled.stderr
    marks = [err.index(m) for i in (1, 2, 3) for m in (f"[r{i}] [1/12] provision", f"[r{i}] [11/12] health: ok")]
    assert marks == sorted(marks), err
    assert scrape_targets(tmp_path, "orchestrator-fleet") == ips

    # scale down: the highest-numbered replica goes, the scrape job follows
    cfg = write_config(cloud, tmp_path, "fleet", 2)
    down = run_cli("deploy", str(cfg), "--json", env=env)
    assert down.returncode == 0, down.stderr
    summary = json.loads(down.stdout)
    assert summary["ok"] is True and [(r["index"], r["status"]) for r in summary["replicas"]] == [
        (1, "deployed"),
        (2, "deployed"),
        (3, "removed"),
    ]
    events = [json.loads(line) for line in down.stderr.splitlines()]
    assert "removing r3" in next(e["message"] for e in events if e["event"] == "info")
    assert {e.get("replica") for e in events if e["event"] == "step_started"} == {1, 2, 3, None}  # None: the fleet's
    doc = state(tmp_path, "fleet")
    assert [r["index"] for r in doc["replicas"]] == [1, 2]
    assert set(cloud_servers(cloud)) == tracked(doc) and len(tracked(doc)) == 2
    assert scrape_targets(tmp_path, "orchestrator-fleet") == ips[:2]
    assert "orchestrator:fleet-r3" not in (tmp_path / "home" / "known_hosts").read_text()
    assert doc["retired_hours"] == 1  # r3's started hour stays in the deployment's lifetime cost

    # Each replica's cost counts from its own server's creation: the deployment is 3 hours old, r1's server 2.5 h
    path = tmp_path / "home" / "deployments" / "fleet.json"
    doc["created_at"] -= 3 * 3600
    doc["replicas"][0]["server"]["created_at"] -= 2.5 * 3600
    path.write_text(json.dumps(doc))
    live = json.loads(run_cli("status", "fleet", "--json", env=env).stdout)[0]
    assert [r["live"]["cost_so_far"] for r in live["replicas"]] == [3 * PRICE, 1 * PRICE], live["replicas"]
    assert live["cost"]["so_far"] == 5 * PRICE  # the fleet's: r1's 3 started hours, r2's 1, and r3's (retired) 1

    gone = run_cli("teardown", "fleet", "--yes", env=env)
    assert gone.returncode == 0, gone.stderr
    assert "2 server(s) deleted and confirmed gone" in gone.stdout
    # every server it had: r3 (1 started hour, scaled down earlier), r1 (3), r2 (1)
    assert f"≈ {5 * PRICE:.2f} EUR for 5 started server-hour(s) at {PRICE} EUR per hour" in gone.stdout, gone.stdout
    assert cloud_servers(cloud) == {}
    assert not (tmp_path / "home" / "deployments" / "fleet.json").exists()
    assert "orchestrator-fleet" not in (tmp_path / "prom" / "prometheus.yml").read_text()
    assert "orchestrator:fleet" not in (tmp_path / "home" / "known_hosts").read_text()


def test_one_replica_failing_is_named_and_only_it_is_removed(
    cloud: MockCloud, env: dict[str, str], tmp_path: Path
) -> None:
    # One create refused by the account's limits: that replica has no server; the other two are deployed.
    set_faults(cloud.upctl_home, fail={"server create": {"times": 1, "kind": "quota"}})
    cfg = write_config(cloud, tmp_path, "part", 3)
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 3, proc.stderr
    assert "1 of 3 replica(s) failed" in proc.stderr and "still serving:" in proc.stderr, proc.stderr
    doc = state(tmp_path, "part")
    failed = [r for r in doc["replicas"] if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["server"] is None and "RESOURCE_LIMIT_EXCEEDED" in failed[0]["last_error"]
    assert f"r{failed[0]['index']}" in proc.stderr
    assert set(cloud_servers(cloud)) == tracked(doc) and len(tracked(doc)) == 2
    serving = [f"{r['server']['ip']}:8000" for r in doc["replicas"] if r["status"] == "deployed"]
    assert scrape_targets(tmp_path, "orchestrator-part") == serving and len(serving) == 2
    # logs of the whole fleet: the two that serve, then the one without a server named (exit 5)
    logs = run_cli("logs", "part", "--tail", "20", env=env)
    assert logs.returncode == 5, logs.stderr
    shown = {ln.split(" ", 1)[0] for ln in logs.stdout.splitlines()}
    assert shown == {f"[r{r['index']}]" for r in doc["replicas"] if r["status"] == "deployed"}, logs.stdout
    assert f"error: 1 of 3 replica(s) not shown: part/r{failed[0]['index']}: deployment 'part/r{failed[0]['index']}'" \
           " has no server with an IP address" in logs.stderr, logs.stderr  # fmt: skip

    # One engine that cannot start, with --teardown-on-failure: that replica's server goes, the others stay.
    set_faults(cloud.upctl_home)
    free = {h.ipv4 for h in cloud.hosts} - {s["ip"] for s in (r["server"] for r in doc["replicas"]) if s}
    next(h for h in cloud.hosts if h.ipv4 in free).set_knobs(engine_fail="kv_cache")
    again = run_cli("deploy", str(cfg), "--teardown-on-failure", env=env)
    assert again.returncode == 8, again.stderr
    assert f"r{failed[0]['index']}: deleted (--teardown-on-failure)" in again.stderr, again.stderr
    doc = state(tmp_path, "part")
    assert sorted(r["index"] for r in doc["replicas"]) == sorted(r["index"] for r in doc["replicas"] if r["server"])
    assert len(doc["replicas"]) == 2 and all(r["status"] == "deployed" for r in doc["replicas"])
    assert set(cloud_servers(cloud)) == tracked(doc) and len(tracked(doc)) == 2
    # NAME without /rI is the fleet's lowest-numbered replica (r1 unless it is the one removed)
    first = min(doc["replicas"], key=lambda r: r["index"])
    reach = run_cli("ssh", "--debug", "part", "--", "true", env=env)
    assert reach.returncode == 0 and f"@{first['server']['ip']} " in reach.stdout.splitlines()[0], reach.stderr

    # Someone deletes one replica's server behind our back: status names it gone (a deploy recreates it; the fleet's
    # teardown is not offered for one replica), and the teardown says it found it so.
    lost = doc["replicas"][1]
    deleted = subprocess.run(["upctl", "server", "delete", lost["server"]["uuid"], "--stop", "--delete-storages"],
                             env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr
    text = run_cli("status", "part", env=env).stdout
    assert f"live part/r{lost['index']}:\n  server:  gone\n  engine:  UNHEALTHY: the server is gone (" in text, text
    assert f"`orchestrator deploy {cfg}` creates a new one (the fleet's other replicas are kept as they are)" in text
    # extend still re-arms the replica that is there, names the gone one and exits as the provider error it met
    kept = next(r for r in doc["replicas"] if r["index"] != lost["index"])
    before = time.time()
    extended = run_cli("extend", "part", "2h", env=env)
    assert extended.returncode == 3, extended.stderr
    assert f"part/r{kept['index']} powers itself off in" in extended.stdout, extended.stdout
    assert f"error: 1 of 2 replica(s) not extended: part/r{lost['index']}: server {lost['server']['uuid']}: " \
           "the server is gone (" in extended.stderr, extended.stderr  # fmt: skip
    assert "hint: `orchestrator deploy" in extended.stderr, extended.stderr
    after = {r["index"]: r.get("auto_stop_at") for r in state(tmp_path, "part")["replicas"]}
    assert (after[kept["index"]] or 0) >= before + 7200 - 1 and after[lost["index"]] is None, after
    gone = run_cli("teardown", "part", "--yes", env=env)
    assert gone.returncode == 0, gone.stderr
    assert "2 server(s) deleted and confirmed gone (1 of them already gone)" in gone.stdout, gone.stdout
    assert cloud_servers(cloud) == {}


def test_a_fleet_none_of_whose_replicas_serves_is_still_watched(
    cloud: MockCloud, env: dict[str, str], tmp_path: Path
) -> None:
    """Every engine fails: the servers stay (kept for debugging, billing), so the scrape job lists them all and the
    engine-down alerts can fire; the run names both replicas."""
    for h in cloud.hosts:
        h.set_knobs(engine_fail="kv_cache")
    cfg = write_config(cloud, tmp_path, "down", 2)
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 8, proc.stderr
    assert "2 of 2 replica(s) failed (r1, r2)" in proc.stderr, proc.stderr
    assert "no replica is serving: the scrape job keeps watching every replica that has a server" in proc.stderr
    doc = state(tmp_path, "down")
    assert all(r["status"] == "failed" and r["server"] for r in doc["replicas"]), doc["replicas"]
    ips = [f"{r['server']['ip']}:8000" for r in doc["replicas"]]
    assert scrape_targets(tmp_path, "orchestrator-down") == ips and len(set(ips)) == 2
    gone = run_cli("teardown", "down", "--yes", env=env)
    assert gone.returncode == 0, gone.stderr
    assert cloud_servers(cloud) == {} and "orchestrator-down" not in (tmp_path / "prom" / "prometheus.yml").read_text()


def test_ctrl_c_during_parallel_creates_leaves_nothing_untracked(
    cloud: MockCloud, env: dict[str, str], tmp_path: Path
) -> None:
    cfg = write_config(cloud, tmp_path, "intr", 3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "deploy", str(cfg)],
        env={**os.environ, **env}, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not cloud_servers(cloud) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    doc = state(tmp_path, "intr")
    assert set(cloud_servers(cloud)) == tracked(doc), err  # every server created is recorded
    assert "resume: orchestrator deploy" in err and "interrupt received: each replica stops" in err
    gone = run_cli("teardown", "intr", "--yes", env=env)
    assert gone.returncode == 0, gone.stderr
    assert cloud_servers(cloud) == {}


def test_a_single_server_scaled_to_two_keeps_serving_as_r1_while_r2_is_added(
    cloud: MockCloud, env: dict[str, str], tmp_path: Path
) -> None:
    """`replicas: 1 -> 2`: the single server becomes replica 1 (the same server; its engine, serving with this
    config, is not restarted and answers throughout), replica 2 is created, and the scrape job has both."""
    first = run_cli("deploy", str(write_config(cloud, tmp_path, "grow", 1)), env=env)
    assert first.returncode == 0, first.stderr
    single = state(tmp_path, "grow")
    assert single["server"] is not None and not single.get("replicas")
    uuid, ip = single["server"]["uuid"], single["server"]["ip"]
    def health() -> int:
        return httpx.get(f"http://{ip}:8000/health", timeout=5, trust_env=False).status_code

    with asking_meanwhile(health) as codes:  # replica 1's engine, every 50 ms while the fleet grows
        up = run_cli("deploy", str(write_config(cloud, tmp_path, "grow", 2)), env=env)
    assert up.returncode == 0, up.stderr
    assert len(codes) > 5 and set(codes) == {200}, codes  # replica 1 never stopped serving
    doc = state(tmp_path, "grow")
    assert doc["server"] is None and [r["index"] for r in doc["replicas"]] == [1, 2]
    r1, r2 = doc["replicas"]
    assert r1["server"]["uuid"] == uuid and r2["server"]["uuid"] != uuid  # kept, and one new server
    assert "with this config; not restarted" in r1["steps"]["start-engine"]["note"], r1["steps"]["start-engine"]
    assert r2["status"] == "deployed" and r2["health"]["ok"]
    assert set(cloud_servers(cloud)) == tracked(doc) and len(tracked(doc)) == 2
    assert scrape_targets(tmp_path, "orchestrator-grow") == [f"{ip}:8000", f"{r2['server']['ip']}:8000"]
    gone = run_cli("teardown", "grow", "--yes", env=env)
    assert gone.returncode == 0, gone.stderr
    assert cloud_servers(cloud) == {}


def test_one_hosts_sshd_dying_mid_deploy_fails_only_that_replica(
    cloud: MockCloud, env: dict[str, str], tmp_path: Path
) -> None:
    """Last in the module: the killed sshd stays dead. The other replicas deploy; nothing is left untracked."""
    cfg = write_config(cloud, tmp_path, "cut", 3)
    data = yaml.safe_load(cfg.read_text())
    data["ssh"]["connect_timeout"] = "8s"  # the dead host's reconnects give up sooner
    cfg.write_text(yaml.safe_dump(data))
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "deploy", str(cfg)],
        env={**os.environ, **env}, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    doc_path = tmp_path / "home" / "deployments" / "cut.json"
    try:
        victim = None
        deadline = time.monotonic() + 90
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                doc = json.loads(doc_path.read_text() or "{}")
            except (OSError, ValueError):
                doc = {}
            victim = next((r for r in doc.get("replicas", []) if "verify-gpu" in r["steps"]), None)
            time.sleep(0.05)
        assert victim is not None, "no replica got as far as verify-gpu"
        host = next(h for h in cloud.hosts if h.ipv4 == victim["server"]["ip"])
        for pid in _process_tree(host.sshd_pid):  # the listener and every open session
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (5, 7), err
    assert f"1 of 3 replica(s) failed (r{victim['index']})" in err and "KEPT for debugging" in err, err
    doc = state(tmp_path, "cut")
    assert sorted(r["status"] for r in doc["replicas"]) == ["deployed", "deployed", "failed"]
    assert set(cloud_servers(cloud)) == tracked(doc) and len(tracked(doc)) == 3  # every server is tracked
    orphans = json.loads(run_cli("status", "--orphans", "--json", env=env).stdout)
    assert orphans["orphans"] == [] and orphans["foreign"] == []  # the orphan scan knows a fleet's servers
    gone = run_cli("teardown", "cut", "--yes", env=env)
    assert gone.returncode == 0, gone.stderr
    assert cloud_servers(cloud) == {}
