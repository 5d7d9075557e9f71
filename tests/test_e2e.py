"""End to end on the local mock cloud: fake upctl, real sshd mock hosts, real venv + pip, real Prometheus."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mockcloud.cloud import MockCloud
from mockcloud.prometheus import Prometheus
from mockcloud.upctl import read_state, set_faults
from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")

API_KEY = "sk-e2e-planted-key-7f3a9c"
HF = "hf_plantedE2eToken42"


@pytest.fixture(scope="module")
def cloud(mock_cloud: MockCloud) -> MockCloud:
    """The session's two-host mock cloud (tests/conftest.py says why sharing it is safe)."""
    return mock_cloud


@pytest.fixture(scope="module")
def prom(shared_prom: Prometheus | None) -> Prometheus | None:
    """The session's Prometheus (tests/conftest.py)."""
    return shared_prom


@pytest.fixture
def env(cloud: MockCloud, tmp_path: Path) -> Iterator[dict[str, str]]:
    e = cloud.env() | {"ORCHESTRATOR_HOME": str(tmp_path / "home"), "VLLM_API_KEY": API_KEY, "HF_TOKEN": HF}
    for h in cloud.hosts:
        h.reset_knobs()
        h.set_knobs(engine_startup_delay=0.3)
    set_faults(cloud.upctl_home)
    yield e
    # Nothing may be left billing, whatever the test did.
    servers = read_state(cloud.upctl_home).get("servers", {})
    live = servers.values() if isinstance(servers, dict) else servers
    for srv in list(live):
        uuid = srv["uuid"] if isinstance(srv, dict) else srv
        subprocess.run(["upctl", "server", "delete", uuid, "--stop", "--delete-storages"], env=e, capture_output=True)


def write_config(
    cloud: MockCloud, tmp_path: Path, prom: Prometheus | None, name: str = "e2e", **engine: object
) -> Path:
    prom_cfg = prom.config if prom else tmp_path / "prom" / "prometheus.yml"
    data: dict[str, object] = {
        "name": name,
        "provider": {"plan": "^GPU-8xCPU-64GB-1xL40S$", "storage_gb": 50},
        "ssh": {
            "user": cloud.user,
            "port": cloud.ssh_port,
            "private_key": str(cloud.client_key),
            "connect_timeout": "30s",
        },
        "engine": {
            "kind": "vllm",
            "model": "Qwen/Qwen2.5-0.5B-Instruct",
            "served_name": "qwen-mini",
            "health": {"timeout": "60s", "interval": "0.3s"},
            **engine,
        },
        "monitoring": {
            "prometheus_config": str(prom_cfg),
            "scrape_interval": "1s",
            "reload_url": f"{prom.url}/-/reload" if prom else None,
            "file_sd_dir": str(tmp_path / "file_sd"),
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def engine_processes(cloud: MockCloud) -> list[int]:
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (
            b"mockcloud.engine" in cmd
            and state != "Z"
            and any(
                str(h.home).encode() in Path(f"/proc/{pid}/environ").read_bytes()
                for h in cloud.hosts
                if os.access(f"/proc/{pid}/environ", os.R_OK)
            )
        ):
            pids.append(int(pid))
    return pids


def all_text_under(*roots: Path) -> str:
    chunks = []
    for root in roots:
        for p in root.rglob("*") if root.is_dir() else [root]:
            if p.is_file() and p.stat().st_size < 2_000_000:
                chunks.append(p.read_text(errors="replace"))
    return "\n".join(chunks)


def test_deploy_status_redeploy_teardown(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    cfg = write_config(cloud, tmp_path, prom)
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 0, proc.stderr
    for step in (
        "provision",
        "connect",
        "verify-gpu",
        "install-stack",
        "start-engine",
        "health",
        "monitoring",
    ):
        assert f"{step}: ok" in proc.stderr
    assert "endpoint: http://" in proc.stdout

    state_file = tmp_path / "home" / "deployments" / "e2e.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    status = json.loads(run_cli("status", "e2e", "--json", env=env).stdout)[0]
    srv, eng = status["server"], status["engine"]
    assert srv["uuid"].startswith("00") and srv["plan"] == "GPU-8xCPU-64GB-1xL40S" and srv["host_key"]
    assert status["health"]["ok"] is True and status["status"] == "deployed"
    assert eng["endpoint"] == f"http://{srv['ip']}:8000/v1"
    cloud_servers = read_state(cloud.upctl_home)["servers"]
    assert srv["uuid"] in json.dumps(cloud_servers)

    # it really serves, with the key, and refuses without it
    req = urllib.request.Request(f"{eng['endpoint']}/models", headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert "qwen-mini" in resp.read().decode()
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{eng['endpoint']}/models", timeout=5)
    assert denied.value.code == 401

    # monitoring: job in prometheus.yml, promtool-valid, file_sd, run metrics; a real Prometheus scrapes it
    prom_cfg = Path(status["monitoring"]["prometheus_config"])
    assert "orchestrator-e2e" in prom_cfg.read_text()
    if shutil.which("promtool"):
        assert subprocess.run(["promtool", "check", "config", str(prom_cfg)], capture_output=True).returncode == 0
    assert json.loads((tmp_path / "file_sd" / "orchestrator-e2e.json").read_text())[0]["targets"] == [
        f"{srv['ip']}:8000"
    ]
    metrics = Path(status["monitoring"]["run_metrics"]).read_text()
    assert 'orchestrator_run_success{command="deploy",deployment="e2e"} 1.0' in metrics
    if prom is not None:
        up = prom.wait_up("orchestrator-e2e", timeout=30)
        assert up[0]["metric"]["instance"] == f"{srv['ip']}:8000"  # type: ignore[index]
        assert prom.query('vllm:num_requests_running{job="orchestrator-e2e"}')

    # the UpCloud firewall: SSH and the engine only from the operator's address, everything else dropped
    shown = subprocess.run(
        ["upctl", "server", "firewall", "show", srv["uuid"], "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rules = json.loads(shown.stdout)["firewall_rules"]
    operator = rules[0]["source_address_start"]
    assert operator.startswith(srv["ip"].rsplit(".", 1)[0] + ".")  # the address the server saw SSH come from
    assert [(r["destination_port_start"], r["source_address_end"]) for r in rules[:2]] == [
        (str(cloud.ssh_port), operator),  # 22 in network namespaces (root), 2222-style on loopback
        ("8000", operator),
    ]
    assert rules[-1]["action"] == "drop" and "family" not in rules[-1]
    server_doc = subprocess.run(
        ["upctl", "server", "show", srv["uuid"], "-o", "json"], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(server_doc.stdout)["firewall"] == "on"

    # re-running deploy resumes: every step re-checks instead of redoing (--json: one document on stdout)
    again = run_cli("deploy", str(cfg), "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["ok"] is True
    assert "already exists" in again.stderr and "already installed" in again.stderr
    assert "already configured" in again.stderr
    assert "vllm already serving qwen-mini with this config; not restarted" in again.stderr
    assert len(read_state(cloud.upctl_home)["servers"]) == 1

    moved = tmp_path / "moved" / "e2e.yaml"  # the same deployment, its config file now elsewhere
    moved.parent.mkdir()
    moved.write_text(cfg.read_text())  # its paths are absolute
    redeploy = run_cli("redeploy", str(moved), env=env)
    assert redeploy.returncode == 0, redeploy.stderr
    assert "start-engine: ok" in redeploy.stderr and "not restarted" not in redeploy.stderr
    assert len(engine_processes(cloud)) == 1, "redeploy must replace the engine, not add one"
    # the record names the file it was last run from: its hints (status, resume, --recreate) point there
    assert json.loads(run_cli("status", "e2e", "--json", "--local", env=env).stdout)[0]["config_path"] == str(moved)

    # secrets never appear in output, state, logs or written files
    everything = "\n".join(
        [
            proc.stdout,
            proc.stderr,
            again.stdout,
            again.stderr,
            redeploy.stdout,
            redeploy.stderr,
            all_text_under(tmp_path),
        ]
    )
    assert API_KEY not in everything and HF not in everything

    down = run_cli("teardown", "e2e", "--yes", env=env)
    assert down.returncode == 0, down.stderr
    assert "deleted (confirmed)" in down.stderr
    assert read_state(cloud.upctl_home)["servers"] in ({}, [])
    assert not state_file.exists()
    assert "orchestrator-e2e" not in prom_cfg.read_text()
    assert engine_processes(cloud) == []


def test_engine_crash_is_explained_and_server_kept(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    for h in cloud.hosts:
        h.set_knobs(engine_fail="kv_cache")
    cfg = write_config(cloud, tmp_path, prom, name="crash")
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 8, proc.stderr
    # the engine's own traceback is shown as its log tail ("  | ..."), never one of ours
    assert not any(line.startswith("Traceback") for line in proc.stderr.splitlines())
    assert "max_model_len" in proc.stderr  # the known-failure explanation (F6) and the log tail
    assert "KEPT for debugging" in proc.stderr and "orchestrator teardown crash --yes" in proc.stderr
    status = json.loads(run_cli("status", "crash", "--json", env=env).stdout)[0]
    assert status["status"] == "failed" and status["health"]["ok"] is False
    down = run_cli("teardown", "crash", "--yes", env=env)
    assert down.returncode == 0, down.stderr


def test_gpu_driver_missing_exit_6(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    for h in cloud.hosts:
        h.set_knobs(nvsmi_fail=True)
    cfg = write_config(cloud, tmp_path, prom, name="nogpu")
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 6, proc.stderr
    assert "driver" in proc.stderr.lower() and "reboot" in proc.stderr.lower()
    assert run_cli("teardown", "nogpu", "--yes", env=env).returncode == 0


@pytest.mark.parametrize("token, code", [(None, 4), ("invalid", 4)])
def test_credentials_errors(
    cloud: MockCloud,
    prom: Prometheus | None,
    env: dict[str, str],
    tmp_path: Path,
    token: str | None,
    code: int,
) -> None:
    e = dict(env)
    e.pop("UPCLOUD_TOKEN")
    e["HOME"] = str(tmp_path)  # no ~/.config/upctl.yaml either
    if token:
        e["UPCLOUD_TOKEN"] = token
    proc = run_cli("deploy", str(write_config(cloud, tmp_path, prom, name="creds")), env=e)
    assert proc.returncode == code, proc.stderr
    assert "UPCLOUD_TOKEN" in proc.stderr and "UPCLOUD_USERNAME" in proc.stderr
    assert read_state(cloud.upctl_home).get("servers") in ({}, [], None)


def test_no_capacity_creates_nothing(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    set_faults(cloud.upctl_home, devices={"fi-hel2": {"GPU-8xCPU-64GB-1xL40S": 0}})
    proc = run_cli("deploy", str(write_config(cloud, tmp_path, prom, name="nocap")), env=env)
    assert proc.returncode == 3, proc.stderr
    assert read_state(cloud.upctl_home).get("servers") in ({}, [], None)


def test_wait_timeout_still_confirmed_and_transient_create_retried(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    set_faults(cloud.upctl_home, wait_timeout=True, boot_polls=2, fail={"server plans": {"times": 1, "kind": "5xx"}})
    cfg = write_config(
        cloud,
        tmp_path,
        prom,
        name="slowboot",
        health={"timeout": "60s", "interval": "0.3s", "completion_check": False},
    )
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "transient" in proc.stderr and "checking the state myself" in proc.stderr
    assert run_cli("teardown", "slowboot", "--yes", env=env).returncode == 0


def test_changed_host_key_is_refused(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    cfg = write_config(cloud, tmp_path, prom, name="hostkey")
    assert run_cli("deploy", str(cfg), env=env).returncode == 0
    state_file = tmp_path / "home" / "deployments" / "hostkey.json"
    doc = json.loads(state_file.read_text())
    doc["server"]["host_key"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherKey1"
    state_file.write_text(json.dumps(doc))
    proc = run_cli("redeploy", str(cfg), env=env)
    assert proc.returncode == 5, proc.stderr
    assert "host key" in proc.stderr and "changed" in proc.stderr
    assert run_cli("teardown", "hostkey", "--yes", env=env).returncode == 0


def test_docker_install_method(cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path) -> None:
    cfg = write_config(
        cloud, tmp_path, prom, name="dock", install={"method": "docker", "image": "vllm/vllm-openai:v0.11.0"}
    )
    proc = run_cli("deploy", str(cfg), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    steps = {s["kind"]: s for s in json.loads(proc.stdout)["steps"]}
    assert steps["install-stack"]["actions"][-1] == "remote: docker pull vllm/vllm-openai:v0.11.0"
    assert steps["install-stack"]["note"] == "installed (docker.io/vllm/vllm-openai:v0.11.0)"
    assert steps["start-engine"]["note"] == "started"
    assert steps["start-engine"]["actions"][-1].startswith("remote: out=$(sh .orchestrator/dock/start.sh 2>&1)")
    # exactly one container, from the image, with the GPU, the port, secrets by name and a restart policy
    records = [
        json.loads(f.read_text()) for h in cloud.hosts for f in sorted((h.home / "containers").glob("*.json"))
    ]
    mine = [r for r in records if r["Name"] == "/orchestrator-dock"]
    assert len(mine) == 1 and mine[0]["State"]["Status"] == "running"
    c = mine[0]
    assert c["Image"] == "vllm/vllm-openai:v0.11.0" and c["Config"]["Entrypoint"] == ["vllm", "serve"]
    assert c["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert (c["HostConfig"]["Gpus"], c["HostConfig"]["IpcMode"]) == (["all"], "host")
    assert c["HostConfig"]["PortBindings"] == {"8000/tcp": [{"HostIp": "", "HostPort": "8000"}]}
    assert "VLLM_API_KEY" in c["Config"]["Env"] and env["VLLM_API_KEY"] not in json.dumps(c)
    assert c["Config"]["Cmd"][:2] == ["--model", "Qwen/Qwen2.5-0.5B-Instruct"]
    rec = json.loads((tmp_path / "home" / "deployments" / "dock.json").read_text())["engine"]
    assert (rec["method"], rec["pid"]) == ("docker", None)
    # The server reboots (`sudo reboot` as the login user, over SSH): docker starts the engine again by itself
    # (--restart unless-stopped), as a new process.
    from orchestrator.actions import Connect
    from orchestrator.transports.ssh import SshSession

    host = next(h for h in cloud.hosts if (h.home / "containers" / f"{c['Id']}.json").exists())
    ssh = SshSession()
    ssh.connect(Connect(host.ipv4, host.ssh_port, host.user, str(cloud.client_key), None, 30.0))
    try:
        assert ssh.run("sudo -n reboot", 30).rc == 0
    finally:
        ssh.close()
    record = host.home / "containers" / f"{c['Id']}.json"
    deadline = time.monotonic() + 60
    while True:
        state = json.loads(record.read_text())["State"]
        if state["Status"] == "running" and state["Pid"] not in (0, c["State"]["Pid"]):
            break
        assert time.monotonic() < deadline, f"the container did not come back after the reboot: {state}"
        time.sleep(0.3)
    health = rec["endpoint"].removesuffix("/v1") + "/health"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(health, timeout=5) as resp:
                assert resp.status == 200
                break
        except OSError:
            if time.monotonic() > deadline:
                log = (host.home / "containers" / f"{c['Id']}.log").read_text()[-3000:]
                raise AssertionError(f"the engine did not come back after the reboot:\n{log}") from None
            time.sleep(0.3)
    down = run_cli("teardown", "dock", "--yes", env=env)
    assert down.returncode == 0, down.stderr
    assert engine_processes(cloud) == []
    containers = [f for h in cloud.hosts for f in (h.home / "containers").glob("*.json")]
    left = [f for f in containers if "/orchestrator-dock" in f.read_text()]
    assert left == []


def test_engine_protected_by_default(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    """No VLLM_API_KEY: a key is generated (0600, outside state), the engine requires it, output never shows it."""
    e = {k: v for k, v in env.items() if k != "VLLM_API_KEY"}
    proc = run_cli("deploy", str(write_config(cloud, tmp_path, prom, name="guarded")), env=e)
    assert proc.returncode == 0, proc.stderr
    key_file = tmp_path / "home" / "secrets" / "guarded.api_key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and str(key_file) in proc.stderr
    endpoint = json.loads(run_cli("status", "guarded", "--json", env=e).stdout)[0]["engine"]["endpoint"]
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{endpoint}/models", timeout=5)
    assert denied.value.code == 401
    req = urllib.request.Request(f"{endpoint}/models", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    state = (tmp_path / "home" / "deployments" / "guarded.json").read_text()
    assert key not in proc.stdout + proc.stderr + state
    assert run_cli("teardown", "guarded", "--yes", env=e).returncode == 0


def test_ttl_powers_the_server_off_by_itself(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    cfg = write_config(cloud, tmp_path, prom, name="ttl")
    data = yaml.safe_load(cfg.read_text())
    data["provider"]["ttl"] = "20s"
    cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "auto-stop: ok" in proc.stderr and "powers itself off in" in proc.stderr
    table = run_cli("status", env=env).stdout
    assert "AUTO-STOP" in table and " in " in table.splitlines()[1]
    uuid = json.loads(run_cli("status", "ttl", "--json", env=env).stdout)[0]["server"]["uuid"]
    deadline = time.monotonic() + 45
    state = ""
    while time.monotonic() < deadline:
        shown = subprocess.run(["upctl", "server", "show", uuid, "-o", "json"], env=env, capture_output=True, text=True)
        state = json.loads(shown.stdout)["state"]
        if state == "stopped":
            break
        time.sleep(0.5)
    assert state == "stopped", "the on-host timer did not power the server off"
    gone = time.monotonic() + 10
    while engine_processes(cloud) and time.monotonic() < gone:
        time.sleep(0.2)
    assert engine_processes(cloud) == [], "powering off must stop the engine"
    table = run_cli("status", env=env).stdout
    assert "due " in table
    assert "  server:  stopped" in table and "  engine:  UNHEALTHY: the server is stopped (its auto-stop timer" in table
    live = json.loads(run_cli("status", "ttl", "--json", env=env).stdout)[0]["live"]
    assert live["billing"] is False and live["server"]["state"] == "stopped"
    extend = run_cli("extend", "ttl", "1h", env=env)  # too late to extend: said at once
    assert extend.returncode == 3 and f"`orchestrator deploy {cfg}` starts it again" in extend.stderr
    # deploy brings it back: the server started again, the engine restarted, a fresh ttl armed
    again = run_cli("deploy", str(cfg), env=env)
    assert again.returncode == 0, again.stderr
    assert f"server {uuid} was stopped: started it again" in again.stderr
    doc = json.loads(run_cli("status", "ttl", "--json", env=env).stdout)[0]
    assert doc["live"]["server"]["state"] == "started" and doc["live"]["engine_health"]["ok"] is True
    assert doc["live"]["billing"] is True and 0 < doc["live"]["ttl_left_s"] <= 20
    assert engine_processes(cloud), "the engine runs again"
    assert run_cli("teardown", "ttl", "--yes", env=env).returncode == 0
