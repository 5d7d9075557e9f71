"""Reach it: `logs`, `ssh` and `extend` — the engines' log commands, the SSH argv, the error mapping (no host), and
end to end on the mock cloud against one shared deployment (docker method, so `docker logs` goes through SSH)."""

from __future__ import annotations

import calendar
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from mockcloud.cloud import MockCloud
from orchestrator.commands.logs import light_log_command, validated_log_command
from orchestrator.commands.ssh import openssh_argv, remote_command
from orchestrator.commands.target import Target, load_ssh_target, load_target, ssh_target_of
from orchestrator.config import AnyEngineConfig, DeploymentConfig, InstallConfig, load_config
from orchestrator.engines import engine_for
from orchestrator.engines.logs import KINDS, METHODS, ray_log_command, snapshot_log_source
from orchestrator.errors import ConfigError
from orchestrator.state import Deployment, ServerRecord, StateStore
from tests.conftest import REPO, SERVED, Served, run_cli

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOrchestratorReachTestPinnedHostKey0000000"

# ---------------------------------------------------------------- the engines' log commands


def engine_cfg(**engine: object) -> DeploymentConfig:
    defaults = {} if "kind" in engine else {"model": "m"}
    return DeploymentConfig.model_validate({"name": "reach", "engine": {**defaults, **engine}})


def test_vllm_log_file_command() -> None:
    e = engine_for(engine_cfg())
    assert e.log_command(20) == "tail -n 20 .orchestrator/reach/engine.log"
    assert e.log_command(5, None, True) == "tail -n 5 -F .orchestrator/reach/engine.log"
    with pytest.raises(ConfigError, match="--since is not supported for vLLM's pip method"):
        e.log_command(20, "10m")


def test_docker_log_commands() -> None:
    vllm = engine_for(engine_cfg(install={"method": "docker", "image": "vllm/vllm-openai:v0.11.0"}))
    triton = engine_for(engine_cfg(kind="triton", model_repository="/srv/models"))
    tfs = engine_for(engine_cfg(kind="tfserving", saved_model="/srv/saved"))
    for e in (vllm, triton, tfs):
        assert e.log_command(20) == "docker logs --tail 20 orchestrator-reach 2>&1"
        assert e.log_command(3, "1h30m", True) == "docker logs --tail 3 --since 1h30m --follow orchestrator-reach 2>&1"
    assert tfs.log_command(1, "2026-05-04T12:00:00Z") == (
        "docker logs --tail 1 --since 2026-05-04T12:00:00Z orchestrator-reach 2>&1"
    )
    for bad in ("10m; rm -rf ~", "$(id)", "yesterday", "10 m"):
        with pytest.raises(ConfigError, match="is not a duration or a timestamp"):
            triton.log_command(20, bad)


def _outcome(build: Callable[[int, str | None, bool], str | None], tail: int, since: str | None, follow: bool) -> str:
    try:
        return build(tail, since, follow) or "no command"
    except ConfigError as exc:
        return f"ConfigError: {exc} / {exc.hint}"


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.stem)
@pytest.mark.parametrize("method", METHODS)
def test_the_snapshot_log_command_is_the_engines(path: Path, method: str) -> None:
    """`logs` builds the command from the config snapshot without pydantic: for every config here and each of
    vLLM's install methods, the same text as Engine.log_command, and the same refusal of --since for log files."""
    data = load_config(path, check_files=False).model_dump(mode="json")
    if data["engine"]["kind"] == "vllm":
        data["engine"]["install"]["method"] = method
    elif method != "pip":
        pytest.skip("only vLLM has install methods")
    try:
        cfg = DeploymentConfig.model_validate(data)
    except ValidationError:
        pytest.skip(f"{path.name} does not take the {method} method")
    snapshot = cfg.model_dump(mode="json")
    engine = engine_for(cfg)
    for tail, since, follow in ((100, None, False), (0, None, True), (7, "1h30m", True), (3, "$(id)", False)):
        light = _outcome(lambda t, s, f: light_log_command(snapshot, t, s, f), tail, since, follow)
        assert light == _outcome(lambda t, s, f: validated_log_command(cfg, t, s, f), tail, since, follow)
        if cfg.cluster is None:  # one server or a fleet: the engine's own log
            assert light == _outcome(engine.log_command, tail, since, follow), (tail, since, follow)
        else:  # a Ray node: Serve's log files under cluster.temp_dir
            assert light.startswith("tail ") and "/session_latest/logs/serve/*.log" in light or "--since" in light


def test_a_ray_nodes_log_is_serves_under_its_temp_dir() -> None:
    assert ray_log_command("/tmp/ray", 20, None, False) == "tail -n 20 /tmp/ray/session_latest/logs/serve/*.log"
    assert ray_log_command("/tmp/my ray", 1, None, False) == "tail -n 1 '/tmp/my ray'/session_latest/logs/serve/*.log"
    assert ray_log_command("ray", 5, None, True) == (
        "tail -n 5 -F \"$HOME\"/ray/session_latest/logs/serve/*.log"
    )
    with pytest.raises(ConfigError, match="--since is not supported for a Ray cluster"):
        ray_log_command("/tmp/ray", 20, "10m", False)


def test_the_snapshot_log_source_knows_what_the_config_model_knows() -> None:
    kinds = {get_args(m.model_fields["kind"].annotation)[0] for m in get_args(get_args(AnyEngineConfig)[0])}
    assert set(KINDS) == kinds
    assert get_args(InstallConfig.model_fields["method"].annotation) == METHODS
    vllm = {"kind": "vllm"}
    for odd in ({}, {"name": "x"}, {"name": "x", "engine": {"kind": "other"}}, {"name": "x", "engine": vllm},
                {"name": "x", "engine": {**vllm, "install": {"method": "conda"}}}):  # fmt: skip
        assert snapshot_log_source(odd) is None, odd  # the validated config decides (and says what is wrong)


def test_ssh_argv_pins_the_host_key_and_quotes_the_command() -> None:
    dep = Deployment(name="reach", config_path="", server=ServerRecord(uuid="u", ip="10.0.0.9", host_key=HOST_KEY))
    cfg = DeploymentConfig.model_validate(
        {"name": "reach", "engine": {"model": "m"}, "ssh": {"user": "ubuntu", "port": 2222, "private_key": "/k/id"}}
    )
    t = ssh_target_of(Target(dep=dep, cfg=cfg, ip="10.0.0.9", host_key=HOST_KEY))
    argv = openssh_argv("/usr/bin/ssh", t, "/h/known_hosts", remote_command(["sh", "-c", "exit 3"]))
    assert argv == [
        "/usr/bin/ssh",
        "-o", "UserKnownHostsFile=/h/known_hosts",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes",
        "-i", "/k/id",
        "-o", "ConnectTimeout=15",
        "-p", "2222",
        "--",
        "ubuntu@10.0.0.9",
        "sh -c 'exit 3'",
    ]  # fmt: skip
    assert remote_command(["ls | wc -l"]) == "ls | wc -l"  # one argument: a command line, as with ssh
    assert openssh_argv("ssh", t, "/h/kh", None)[-3:] == ["-t", "--", "ubuntu@10.0.0.9"]  # a shell gets a terminal


# ---------------------------------------------------------------- errors, without a host


def client_key(folder: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    path = folder / "id_ed25519"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    (folder / "id_ed25519.pub").write_bytes(pub + b" reach-test\n")
    return path


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def offline(tmp_path: Path) -> dict[str, str]:
    """A state record for deployment `far`: a server on 127.0.0.1 at a port nothing listens on."""
    home = tmp_path / "home"
    key = client_key(tmp_path)
    cfg = DeploymentConfig.model_validate(
        {
            "name": "far",
            "engine": {"model": "m"},
            "ssh": {"private_key": str(key), "port": closed_port(), "connect_timeout": "2s"},
        }
    )
    server = ServerRecord(uuid="00a1-far", ip="127.0.0.1", host_key=HOST_KEY)
    dep = Deployment(name="far", config_path="", status="deployed", server=server, config=cfg.model_dump(mode="json"))
    StateStore(home).save(dep)
    unpinned = Deployment(
        name="loose",
        config_path="/cfg/loose.yaml",
        server=ServerRecord(uuid="00a2-loose", ip="127.0.0.1"),
        config=cfg.model_copy(update={"name": "loose"}).model_dump(mode="json"),
    )
    StateStore(home).save(unpinned)
    return {"ORCHESTRATOR_HOME": str(home)}


def test_the_light_ssh_target_is_the_validated_one(offline: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`orchestrator ssh` reads the snapshot's ssh section without pydantic: the same values as the config model
    (a `~` key path expanded the same way), and the same refusal of an unpinned server."""
    monkeypatch.setenv("ORCHESTRATOR_HOME", offline["ORCHESTRATOR_HOME"])
    light = load_ssh_target("far")
    full = load_target("far")
    assert light == ssh_target_of(full)
    assert light.private_key_path == full.cfg.ssh.private_key_path
    tilde = full.cfg.model_copy(update={"ssh": full.cfg.ssh.model_copy(update={"private_key": "~/k"})})
    StateStore().save(full.dep.model_copy(update={"name": "tilde", "config": tilde.model_dump(mode="json")}))
    assert load_ssh_target("tilde").private_key_path == tilde.ssh.private_key_path == Path.home() / "k"
    with pytest.raises(Exception) as light_err:
        load_ssh_target("loose")
    with pytest.raises(Exception) as full_err:
        load_target("loose")
    assert str(light_err.value) == str(full_err.value) and type(light_err.value) is type(full_err.value)


@pytest.mark.parametrize(
    "args", [["logs", "nope"], ["ssh", "nope", "--", "true"], ["extend", "nope", "1h"]], ids=lambda a: a[0]
)
def test_unknown_deployment_is_exit_11(args: list[str], offline: dict[str, str]) -> None:
    proc = run_cli(*args, env=offline)
    assert proc.returncode == 11, proc.stderr
    assert "no deployment named 'nope'" in proc.stderr


@pytest.mark.parametrize("args", [["logs", "loose"], ["ssh", "loose", "--", "true"]], ids=lambda a: a[0])
def test_no_pinned_host_key_is_refused(args: list[str], offline: dict[str, str]) -> None:
    proc = run_cli(*args, env=offline)
    assert proc.returncode == 5, proc.stderr
    assert "no pinned host key" in proc.stderr and "orchestrator redeploy /cfg/loose.yaml" in proc.stderr


@pytest.mark.parametrize("path", ["with-ssh", "without-ssh"])
def test_unreachable_host_is_exit_5(path: str, offline: dict[str, str], tmp_path: Path) -> None:
    env = dict(offline)
    if path == "without-ssh":
        (tmp_path / "empty").mkdir()
        env["PATH"] = str(tmp_path / "empty")  # paramiko then
    proc = run_cli("ssh", "far", "--", "true", env=env)
    assert proc.returncode == 5, proc.stderr
    logs = run_cli("logs", "far", env=offline)
    assert logs.returncode == 5, logs.stderr
    assert "cannot reach 127.0.0.1" in logs.stderr


def test_bad_flags_are_usage_errors(offline: dict[str, str]) -> None:
    since = run_cli("logs", "far", "--since", "10m", env=offline)  # the pip method's log file has no dates
    assert since.returncode == 2 and "--since is not supported" in since.stderr
    assert run_cli("extend", "far", "soon", env=offline).returncode == 2


def test_extend_dry_run_shows_the_plan_and_changes_nothing(offline: dict[str, str]) -> None:
    state = Path(offline["ORCHESTRATOR_HOME"]) / "deployments" / "far.json"
    before = state.read_text()
    proc = run_cli("extend", "far", "2h", "--dry-run", env=offline)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert "[1/3] server-running" in text and "local: upctl server show " in text  # the cloud first
    assert re.search(r"ssh: connect root@127\.0\.0\.1:\d+ \(pinned host key", text)
    assert "remote: mkdir -p .orchestrator/far" in text and "sleep 7200; shutdown -h now" in text
    assert "would power the server off in 2h00m" in text
    assert state.read_text() == before


# ---------------------------------------------------------------- end to end on the mock cloud

@pytest.fixture
def deployed(served: Served) -> tuple[dict[str, str], MockCloud]:
    """The session's shared deployment (vLLM, docker method, provider.ttl 1h; tests/conftest.py)."""
    return served.env, served.cloud


def test_logs_tail_shows_the_engine_start_up(deployed: tuple[dict[str, str], MockCloud]) -> None:
    env, _ = deployed
    proc = run_cli("logs", SERVED, "--tail", "20", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 20, proc.stdout
    whole = run_cli("logs", SERVED, "--tail", "1000", "--since", "1h", env=env)
    assert whole.returncode == 0, whole.stderr
    assert "Automatically detected platform cuda." in whole.stdout and "Starting to load model" in whole.stdout
    assert "Application startup complete." in whole.stdout
    # the shared deployment may have served requests since (one log line each): the tail is the log's last lines
    assert whole.stdout.splitlines()[-20:] == lines
    later = run_cli("logs", SERVED, "--since", "2099-01-01", env=env)  # docker: nothing was written after that
    assert later.returncode == 0 and later.stdout == "", later.stdout


def test_logs_follow_streams_until_ctrl_c(deployed: tuple[dict[str, str], MockCloud]) -> None:
    env, _ = deployed
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "logs", SERVED, "-f", "--tail", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        seen = b""
        guard = time.monotonic() + 60  # a hang guard, not a timing assertion
        while b"\n" not in seen and time.monotonic() < guard:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                seen += os.read(proc.stdout.fileno(), 65536)
        assert b"\n" in seen, "no log line arrived while following"
        assert proc.poll() is None, "-f must keep following"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("client", ["openssh", "paramiko"])
def test_ssh_runs_one_command_with_its_exit_status(
    client: str, deployed: tuple[dict[str, str], MockCloud], tmp_path: Path
) -> None:
    env, _ = deployed
    if client == "paramiko":
        (tmp_path / "bin").mkdir()
        env = env | {"PATH": str(tmp_path / "bin")}  # no `ssh` on PATH
    gpus = run_cli("ssh", SERVED, "--", "nvidia-smi", "-L", env=env)
    assert gpus.returncode == 0, gpus.stderr
    assert re.fullmatch(r"GPU 0: NVIDIA L40S \(UUID: GPU-[0-9a-f-]{36}\)\n", gpus.stdout), gpus.stdout
    three = run_cli("ssh", SERVED, "--", "sh", "-c", "echo out; echo err >&2; exit 3", env=env)
    assert three.returncode == 3, three.stderr
    assert three.stdout == "out\n" and "err\n" in three.stderr
    if client == "paramiko":
        shell = run_cli("ssh", SERVED, env=env)
        assert shell.returncode == 2 and "needs OpenSSH" in shell.stderr


def running(pid: int) -> bool:
    """Alive and not a zombie (an exited process waiting for its reaper cannot power anything off)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_extend_rearms_the_on_host_timer(deployed: tuple[dict[str, str], MockCloud]) -> None:
    env, cloud = deployed
    status = json.loads(run_cli("status", SERVED, "--json", env=env).stdout)[0]
    host = next(h for h in cloud.hosts if h.ipv4 == status["server"]["ip"])
    pid_file = host.home / ".orchestrator" / SERVED / "ttl.pid"
    old_pid = int(pid_file.read_text())
    before = time.time()
    proc = run_cli("extend", SERVED, "2h", env=env)
    after = time.time()
    assert proc.returncode == 0, proc.stderr
    assert "powers itself off in" in proc.stdout
    at = json.loads(run_cli("status", SERVED, "--json", env=env).stdout)[0]["auto_stop_at"]
    stamp = calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ"))  # the ISO time is UTC
    assert before + 7200 - 1 <= stamp <= after + 7200 + 1
    assert "in 1h59m" in run_cli("status", env=env).stdout  # was "in 59m.." (provider.ttl 1h)
    # The host's timer: a new process sleeping ~2h before powering off; the old one is gone.
    new_pid = int(pid_file.read_text())
    assert new_pid != old_pid and not running(old_pid)
    assert running(new_pid)
    cmdline = Path(f"/proc/{new_pid}/cmdline").read_bytes().split(b"\0")
    sleep = re.search(rb"sleep (\d+); .*shutdown -h now", b" ".join(cmdline))
    assert sleep is not None, cmdline
    assert 7200 - (after - before) - 2 <= int(sleep.group(1)) <= 7200
