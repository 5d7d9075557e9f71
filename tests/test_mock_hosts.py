"""Mock GPU hosts end to end: real sshd, real paramiko (TCP_NODELAY), real HTTP to the mock vLLM engine."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import paramiko
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mockcloud.cloud import MockCloud
from mockcloud.engine_vllm_text import ENGINE_CORE_FAILED
from mockcloud.host_errors import MockHostError
from mockcloud.host_sshd import SSHD
from mockcloud.hosts import MockHost, MockHosts, new_root, pid_alive
from mockcloud.wheelhouse import WHEEL_NAME, build_vllm_wheel

needs_sshd = pytest.mark.skipif(not Path(SSHD).exists(), reason=f"{SSHD} missing: apt-get install openssh-server")
F1 = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"
API_KEY = "test-key-7c1e"


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def cloud() -> Iterator[MockCloud]:
    if not Path(SSHD).exists():
        pytest.skip(f"{SSHD} missing: apt-get install openssh-server")
    root = new_root("mockhosts-test-")
    mock = MockCloud(root, hosts=2)
    try:
        mock.start()
        for host in mock.hosts:  # what the fake upctl does at `server create`
            host.authorized_keys.write_text(mock.client_key_pub + "\n")
        yield mock
    finally:
        mock.stop()
        shutil.rmtree(root, ignore_errors=True)


def connect(host: MockHost, key: Path) -> paramiko.SSHClient:
    """A real client: the host key is pinned (RejectPolicy), Nagle is off."""
    client = paramiko.SSHClient()
    kind, blob = host.host_key_pub.split()
    address = host.ipv4 if host.ssh_port == 22 else f"[{host.ipv4}]:{host.ssh_port}"
    client.get_host_keys().add(address, kind, paramiko.Ed25519Key(data=base64.b64decode(blob)))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        host.ipv4,
        port=host.ssh_port,
        username=host.user,
        key_filename=str(key),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    transport = client.get_transport()
    assert transport is not None
    transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
    return client


@pytest.fixture(scope="module")
def ssh(cloud: MockCloud) -> Iterator[dict[str, paramiko.SSHClient]]:
    clients = {host.name: connect(host, cloud.client_key) for host in cloud.hosts}
    yield clients
    for client in clients.values():
        client.close()


def sh(client: paramiko.SSHClient, command: str, timeout: float = 120) -> tuple[int, str, str]:
    _, out, err = client.exec_command(command, timeout=timeout)
    stdout, stderr = out.read().decode(), err.read().decode()
    return out.channel.recv_exit_status(), stdout, stderr


@pytest.fixture()
def knobs(cloud: MockCloud) -> Iterator[list[MockHost]]:
    """The hosts, with every knob put back to its default afterwards."""
    yield cloud.hosts
    for host in cloud.hosts:
        host.reset_knobs()


@pytest.fixture(scope="module")
def venv(cloud: MockCloud, ssh: dict[str, paramiko.SSHClient]) -> str:
    """`python3 -m venv` + a plain `pip install vllm` on h1: pip finds only the stand-in wheel."""
    rc, out, err = sh(ssh["h1"], "python3 -m venv venv && venv/bin/pip install vllm && venv/bin/vllm --version")
    assert rc == 0, out + err
    assert "Successfully installed vllm-0.11.0" in out and out.strip().endswith("0.11.0")
    return "venv/bin/vllm"


def wait_for(check: object, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


# ---------------------------------------------------------------- the hosts


@needs_sshd
def test_login_lands_in_the_hosts_own_environment(cloud: MockCloud, ssh: dict[str, paramiko.SSHClient]) -> None:
    assert len({h.ipv4 for h in cloud.hosts}) == 2 and len({h.ssh_port for h in cloud.hosts}) == 1
    for host in cloud.hosts:
        rc, out, _ = sh(ssh[host.name], 'id -un; pwd; echo "$PATH"; echo "$MOCKHOST_IP"; command -v nvidia-smi docker')
        user, cwd, path, ipv4, nvsmi, docker = out.splitlines()
        assert rc == 0 and user == cloud.user and cwd == str(host.home) and ipv4 == host.ipv4
        assert path.split(":")[0] == str(cloud.mock_hosts.hostbin) and nvsmi.startswith(path.split(":")[0])
        assert docker == str(cloud.mock_hosts.hostbin / "docker")
        rc, out, _ = sh(ssh[host.name], "bash -lc 'pwd; command -v nvidia-smi'")  # /etc/profile resets PATH
        assert (rc, out) == (0, f"{host.home}\n{nvsmi}\n")
        with ssh[host.name].open_sftp() as sftp:
            assert sftp.normalize(".") == str(host.home)
        assert pid_alive(host.sshd_pid)


@needs_sshd
def test_cloud_describes_hosts_for_the_fake_upctl(cloud: MockCloud) -> None:
    listing = json.loads((cloud.root / "upctl" / "hosts.json").read_text())
    assert [(e["ipv4"], e["authorized_keys"], e["poweroff"]) for e in listing] == [
        (h.ipv4, str(h.authorized_keys), h.poweroff) for h in cloud.hosts
    ]
    assert cloud.client_key.stat().st_mode & 0o777 == 0o600
    assert cloud.client_key_pub.startswith("ssh-ed25519 ")
    env = cloud.env()
    assert env["PATH"].split(os.pathsep)[0] == str(Path(__file__).resolve().parents[1] / "mockcloud" / "bin")
    assert env["FAKE_UPCTL_HOME"] == str(cloud.root / "upctl") and env["UPCLOUD_TOKEN"] == "mock-token"
    assert env["MOCKCLOUD_PYTHON"] == sys.executable
    assert cloud.ssh_port == cloud.hosts[0].ssh_port and cloud.user == cloud.hosts[0].user


@needs_sshd
def test_reboot_drops_the_session_and_sshd_comes_back(cloud: MockCloud, knobs: list[MockHost]) -> None:
    """As on a real host: `sudo reboot` ends the SSH session, and the host answers SSH again afterwards. Run as a
    normal user, the host's sshd listener is the login user's own process: the reboot must spare it."""
    host = knobs[1]
    client = connect(host, cloud.client_key)
    _, booted, _ = sh(client, "uptime -s")
    rc, _, _ = sh(client, "sudo -n reboot && sleep 30", timeout=20)
    client.close()
    assert rc == -1  # no exit status: the connection went down under the command
    wait_for(lambda: pid_alive(host.sshd_pid) and _booted_again(host, cloud.client_key, booted), what="SSH back")
    assert pid_alive(host.sshd_pid)


def _booted_again(host: MockHost, key: Path, booted: str) -> bool:
    try:
        again = connect(host, key)
    except (OSError, paramiko.SSHException):
        return False
    try:
        return sh(again, "uptime -s")[1] != booted
    finally:
        again.close()


# ---------------------------------------------------------------- nvidia-smi


@needs_sshd
def test_nvidia_smi_query_formats(ssh: dict[str, paramiko.SSHClient]) -> None:
    client = ssh["h1"]
    rc, out, _ = sh(client, "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader,nounits")
    assert (rc, out) == (0, "NVIDIA L40S, 580.95.05, 46068\n")
    rc, out, _ = sh(client, "nvidia-smi --query-gpu=index,name,memory.total,utilization.gpu,power.draw --format=csv")
    header, row = out.splitlines()
    assert header == "index, name, memory.total [MiB], utilization.gpu [%], power.draw [W]"
    assert re.fullmatch(r"0, NVIDIA L40S, 46068 MiB, \d+ %, [\d.]+ W", row)
    rc, out, _ = sh(client, "nvidia-smi --query-gpu=name,bogus --format=csv")
    assert rc == 2 and 'Field "bogus" is not a valid field to query.' in out
    rc, out, _ = sh(client, "nvidia-smi -L; nvidia-smi --version; nvidia-smi")
    assert rc == 0 and re.search(r"^GPU 0: NVIDIA L40S \(UUID: GPU-[0-9a-f-]{36}\)$", out, re.M)
    assert "DRIVER version      : 580.95.05" in out and "Driver Version: 580.95.05" in out


@needs_sshd
def test_nvidia_smi_follows_knobs(knobs: list[MockHost], ssh: dict[str, paramiko.SSHClient]) -> None:
    h1, h2 = knobs
    h2.set_knobs(gpu_count=2, gpu_name="NVIDIA H100 80GB HBM3", gpu_mem_mib=81559)
    query = "nvidia-smi --query-gpu=index,name,memory.total,compute_cap,count --format=csv,noheader"
    _, out, _ = sh(ssh["h2"], query)
    assert out.splitlines() == [f"{i}, NVIDIA H100 80GB HBM3, 81559 MiB, 9.0, 2" for i in (0, 1)]
    _, out, _ = sh(ssh["h1"], query)
    assert out.splitlines() == ["0, NVIDIA L40S, 46068 MiB, 8.9, 1"]
    h1.set_knobs(nvsmi_fail=True)
    rc, out, _ = sh(ssh["h1"], "nvidia-smi --query-gpu=name --format=csv")
    assert rc == 9 and F1 in out


# ---------------------------------------------------------------- the engine from the stand-in wheel


@needs_sshd
def test_vllm_from_the_wheelhouse_serves_the_openai_api(
    knobs: list[MockHost], ssh: dict[str, paramiko.SSHClient], venv: str
) -> None:
    host = knobs[0]
    host.set_knobs(engine_startup_delay=1.5)
    rc, out, err = sh(
        ssh["h1"],
        f"VLLM_API_KEY={API_KEY} setsid nohup {venv} serve org/m --host 0.0.0.0 --port 8000 "
        "--served-model-name mock-m --max-model-len 4096 --dtype bfloat16 --enforce-eager "
        "> vllm.log 2>&1 < /dev/null & echo $!",
    )
    pid = int(out)
    url = f"http://{host.ipv4}:8000"
    try:
        with pytest.raises(httpx.ConnectError):  # still "loading": the port is not bound yet
            httpx.get(f"{url}/health", timeout=2)
        wait_for(lambda: healthy(url), what="/health 200")
        assert (host.home / "run" / "pids" / str(pid)).exists()
        denied = httpx.get(f"{url}/v1/models", timeout=5)
        assert (denied.status_code, denied.json()) == (401, {"error": "Unauthorized"})
        auth = {"Authorization": f"Bearer {API_KEY}"}
        models = httpx.get(f"{url}/v1/models", headers=auth, timeout=5).json()
        card = models["data"][0]
        assert models["object"] == "list" and (card["id"], card["root"], card["max_model_len"]) == (
            "mock-m",
            "org/m",
            4096,
        )
        done = httpx.post(
            f"{url}/v1/completions",
            headers=auth,
            timeout=5,
            json={"model": "mock-m", "prompt": "Hello there", "max_tokens": 5},
        ).json()
        assert len(done["choices"][0]["text"].split()) == 5 and done["choices"][0]["finish_reason"] == "length"
        assert done["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
        chat = httpx.post(
            f"{url}/v1/chat/completions",
            headers=auth,
            timeout=5,
            json={"model": "mock-m", "messages": [{"role": "user", "content": "hi"}]},
        ).json()
        assert chat["object"] == "chat.completion" and chat["choices"][0]["finish_reason"] == "stop"
        wrong = httpx.post(f"{url}/v1/completions", headers=auth, timeout=5, json={"model": "nope", "prompt": "x"})
        assert wrong.status_code == 404 and wrong.json()["error"]["type"] == "NotFoundError"
        assert httpx.get(f"{url}/version", timeout=5).json() == {"version": "0.11.0"}
        samples = {
            (s.name, s.labels.get("finished_reason")): (s.value, s.labels)
            for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=5).text)
            for s in family.samples
        }
        value, labels = samples[("vllm:num_requests_running", None)]
        assert value == 0 and labels == {"model_name": "mock-m", "engine": "0"}
        assert samples[("vllm:prompt_tokens_total", None)][0] == 2 + 5  # "Hello there" + chat (1 word + 4)
        assert samples[("vllm:request_success_total", "length")][0] == 1
        assert samples[("vllm:request_success_total", "stop")][0] == 1
        assert ("vllm:kv_cache_usage_perc", None) in samples and (
            "vllm:num_requests_waiting",
            None,
        ) in samples
        log = (host.home / "vllm.log").read_text()
        assert "Starting vLLM API server 0 on http://0.0.0.0:8000" in log and "Application startup complete." in log
        assert API_KEY not in log
    finally:
        subprocess.run(host.poweroff, check=True)
    assert not pid_alive(pid) and not (host.home / "run" / "pids" / str(pid)).exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)
    subprocess.run(host.poweroff, check=True)  # a second poweroff is harmless


@needs_sshd
@pytest.mark.parametrize(
    ("failure", "root_cause"),
    [
        ("kv_cache", "KV cache is needed, which is larger than the available KV cache memory"),
        ("oom", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate"),
        ("gated", "Cannot access gated repo for url https://huggingface.co/org/m/resolve/main/config.json."),
        ("free_memory", "is less than desired GPU memory utilization (0.9,"),
    ],
)
def test_engine_failures_exit_with_vllms_root_cause(
    knobs: list[MockHost], ssh: dict[str, paramiko.SSHClient], venv: str, failure: str, root_cause: str
) -> None:
    host = knobs[0]
    host.set_knobs(engine_fail=failure, engine_startup_delay=0.2)
    _, out, _ = sh(ssh["h1"], f"setsid nohup {venv} serve org/m --port 8000 > fail.log 2>&1 < /dev/null & echo $!")
    pid = int(out)
    wait_for(lambda: not pid_alive(pid), what="the failing engine to exit")
    log = (host.home / "fail.log").read_text()
    assert root_cause in log and log.rstrip().endswith(ENGINE_CORE_FAILED)
    assert log.index(root_cause) < log.index(ENGINE_CORE_FAILED)
    rc, _, _ = sh(ssh["h1"], f"{venv} serve org/m --port 8000 >/dev/null 2>&1")
    assert rc == 1


# ---------------------------------------------------------------- docker


@needs_sshd
def test_docker_shim_runs_vllm_containers(knobs: list[MockHost], ssh: dict[str, paramiko.SSHClient]) -> None:
    host, client = knobs[1], ssh["h2"]
    host.set_knobs(engine_startup_delay=0.3)
    run = (
        "docker run -d --name vllm-t --runtime nvidia --gpus all --ipc=host -p 8000:8000 "
        f"--env VLLM_API_KEY={API_KEY} "
        "-e HF_TOKEN -v /x:/root/.cache/huggingface --restart unless-stopped vllm/vllm-openai:v0.11.0 "
        "--model org/m --served-model-name served"
    )
    rc, out, err = sh(client, run)
    cid = out.strip()
    assert rc == 0 and re.fullmatch(r"[0-9a-f]{64}", cid), err
    try:
        _, out, _ = sh(client, "docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' vllm-t")
        assert out == "running 0\n"
        _, out, _ = sh(client, "docker ps --filter name=vllm-t --format '{{.ID}}'")
        assert out == cid[:12] + "\n"
        url = f"http://{host.ipv4}:8000"
        wait_for(lambda: healthy(url), what="the container's /health")
        models = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5).json()
        assert models["data"][0]["id"] == "served"
        _, out, _ = sh(client, "docker logs --tail 20 vllm-t")
        assert "Application startup complete." in out
        rc, _, err = sh(client, run)
        assert rc == 125 and 'Conflict. The container name "/vllm-t" is already in use' in err
        rc, _, err = sh(client, "docker run -d nosuch/image:1")
        assert rc == 125 and "Unable to find image 'nosuch/image:1' locally" in err
        rc, _, err = sh(client, "docker rm vllm-t")
        assert rc == 1 and "container is running" in err
        rc, out, _ = sh(
            client, "docker stop vllm-t && docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' vllm-t"
        )
        assert (rc, out) == (0, "vllm-t\nexited 0\n")
        rc, out, _ = sh(client, "docker rm vllm-t && docker ps -aq")
        assert (rc, out) == (0, "vllm-t\n")
        _, out, _ = sh(client, "docker info --format '{{json .Runtimes}}'")
        assert "nvidia" in json.loads(out)
    finally:
        sh(client, "docker rm -f vllm-t")


@needs_sshd
def test_docker_shim_failures(knobs: list[MockHost], ssh: dict[str, paramiko.SSHClient]) -> None:
    host, client = knobs[1], ssh["h2"]
    host.set_knobs(engine_fail="oom", engine_startup_delay=0.2)
    rc, _, _ = sh(client, "docker run -d --name bad --gpus all -p 8000:8000 vllm/vllm-openai --model org/m")
    assert rc == 0
    status = "docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' bad"
    wait_for(lambda: sh(client, status)[1] == "exited 1\n", what="the failing container to exit")
    _, out, _ = sh(client, "docker logs bad")
    assert "torch.OutOfMemoryError: CUDA out of memory" in out and ENGINE_CORE_FAILED in out
    assert sh(client, "docker rm bad")[0] == 0
    host.set_knobs(no_docker=True)
    rc, _, err = sh(client, "docker ps")
    assert rc == 127 and "docker: command not found" in err


# ---------------------------------------------------------------- the engine, locally


def test_engine_health_streaming_and_sigterm(tmp_path: Path) -> None:
    (tmp_path / "run" / "pids").mkdir(parents=True)
    (tmp_path / "knobs.json").write_text(json.dumps({"engine_startup_delay": 0.1, "engine_health_fail_after": 1.0}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MOCKHOST_HOME": str(tmp_path), "MOCKENGINE_PID_FILE": str(tmp_path / "engine.pid")}
    env.pop("MOCKHOST_IP", None)
    log = open(tmp_path / "engine.log", "wb")  # noqa: SIM115 - closed below
    engine = subprocess.Popen(
        [sys.executable, "-m", "mockcloud.engine", "serve", "m", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url), what="/health 200")
        assert (tmp_path / "engine.pid").read_text().strip() == str(engine.pid)
        with httpx.stream(
            "POST",
            f"{url}/v1/completions",
            json={"model": "m", "prompt": "a b", "max_tokens": 3, "stream": True},
            timeout=5,
        ) as stream:
            events = [line for line in stream.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]" and len(events) == 3 + 2
        assert json.loads(events[-2][6:])["choices"][0]["finish_reason"] == "length"
        wait_for(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 503, what="/health 503")
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=10) == 0
        assert not (tmp_path / "engine.pid").exists() and not list((tmp_path / "run" / "pids").iterdir())
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
        log.close()


def test_stand_in_wheel_is_a_valid_reproducible_wheel(tmp_path: Path) -> None:
    wheel = build_vllm_wheel(tmp_path / "a")
    assert wheel.name == WHEEL_NAME == "vllm-0.11.0-py3-none-any.whl"
    assert wheel.read_bytes() == build_vllm_wheel(tmp_path / "b").read_bytes()
    with zipfile.ZipFile(wheel) as archive:
        record = archive.read("vllm-0.11.0.dist-info/RECORD").decode().splitlines()
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if digest:
                data = archive.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert (digest, int(size)) == (f"sha256={expected}", len(data))
        assert "vllm = vllm._mockcloud_entry:main" in archive.read("vllm-0.11.0.dist-info/entry_points.txt").decode()
        assert set(archive.namelist()) == {line.split(",")[0] for line in record}


# ---------------------------------------------------------------- start/stop hygiene


def _modes() -> list[str]:
    netns_ok = os.geteuid() == 0 and shutil.which("ip") is not None
    return ["netns", "loopback"] if netns_ok else ["loopback"]


@needs_sshd
@pytest.mark.parametrize("mode", _modes())
def test_stop_leaves_no_process_namespace_or_bridge(mode: str) -> None:
    root = new_root("mockhosts-stop-")
    try:
        hosts = MockHosts(root, 2, mode=mode)  # type: ignore[arg-type]
        started = hosts.start()
        assert hosts.mode_used == mode and len({h.ipv4 for h in started}) == 2
        key = root / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        started[0].authorized_keys.write_text(Path(f"{key}.pub").read_text())
        client = connect(started[0], key)
        _, out, _ = sh(
            client,
            'setsid nohup "$MOCKCLOUD_PYTHON" -m mockcloud.engine serve m --port 8000 '
            "> e.log 2>&1 < /dev/null & echo $!",
        )
        client.close()
        engine = int(out)
        assert pid_alive(engine)
        hosts.stop()
        assert not pid_alive(engine) and not any(pid_alive(h.sshd_pid) for h in started)
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not any(h.netns and h.netns in namespaces for h in started)
        assert not Path(f"/sys/class/net/mcbr{hosts.suffix}").exists()
        hosts.stop()  # idempotent
        assert subprocess.run(started[0].poweroff).returncode == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


@needs_sshd
def test_failed_start_raises_clearly_and_cleans_up() -> None:
    root = new_root('bad"root-')
    try:
        hosts = MockHosts(root, 1)
        with pytest.raises(MockHostError, match="not usable in sshd_config"):
            hosts.start()
        assert hosts.hosts == [] and not Path(f"/sys/class/net/mcbr{hosts.suffix}").exists()
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"mc{hosts.suffix}" not in namespaces
    finally:
        shutil.rmtree(root, ignore_errors=True)


@needs_sshd
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="PID namespaces here need netns mode")
def test_own_pids_each_host_sees_and_stops_only_its_own_processes() -> None:
    """What `ray stop` needs to act on one node only: on h2, pkill does not see h1's daemon; the daemon, an
    orphan on h1, is reaped by the host's init once it is killed there (no zombie); stop leaves nothing."""
    root = new_root("mockhosts-pids-")
    try:
        hosts = MockHosts(root, 2, mode="netns", own_pids=True)
        started = hosts.start()
        key = root / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        for host in started:
            host.authorized_keys.write_text(Path(f"{key}.pub").read_text())
        h1, h2 = (connect(h, key) for h in started)
        try:
            rc, out, _ = sh(h1, "setsid nohup sleep 3600 > /dev/null 2>&1 < /dev/null & echo $!")
            inner = int(out)
            assert rc == 0 and inner < 100  # a PID of the host's own space, not the machine's
            outer: list[int] = []

            def exec_done() -> bool:  # `echo $!` answers before the child has exec'd nohup, then sleep
                outer[:] = [p for p in _netns_pids(started[0].netns) if _cmdline(p) == ["sleep", "3600"]]
                return len(outer) == 1

            wait_for(exec_done, timeout=10.0, what="h1's daemon running as `sleep 3600`")
            assert pid_alive(outer[0])
            assert sh(h1, "cat /proc/1/cmdline | tr '\\0' ' '")[1].split()[2].endswith("pid_init.py")
            assert sh(h2, "pgrep -x sleep")[0] == 1  # h2 sees none of h1's processes
            assert sh(h2, "pkill -x sleep")[0] == 1 and pid_alive(outer[0])
            assert sh(h1, "pkill -x sleep")[0] == 0
            wait_for(lambda: not Path(f"/proc/{outer[0]}").exists(), what="h1's daemon reaped by its init")
            assert started[0].sshd_pid != hosts._procs[0].pid and pid_alive(started[0].sshd_pid)
            assert os.readlink(f"/proc/{started[0].sshd_pid}/exe") == SSHD
        finally:
            h1.close()
            h2.close()
        sh_pids = [started[0].sshd_pid, started[1].sshd_pid]
        hosts.stop()
        assert not any(pid_alive(p) for p in sh_pids)
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not any(h.netns and h.netns in namespaces for h in started)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _netns_pids(ns: str | None) -> list[int]:
    assert ns is not None
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []
