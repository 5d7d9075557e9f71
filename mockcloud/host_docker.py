# Mock `docker` CLI for mockcloud hosts, run by the shim mockcloud/hostbin/docker (a module: its bytecode is cached;
# the modules a call may not need are imported where used). Just enough of run/ps/inspect/logs/stop/kill/rm/info/
# version/pull for `vllm/vllm-openai:<tag>` (entrypoint `vllm serve`: the mock engine).
# A "container" is a detached supervisor process that runs the engine and records its state in
# $MOCKHOST_HOME/containers/<id>.json (no secrets: env values are never stored); its log is <id>.log there.
# Here: `run`, the supervisor, dockerd's boot and the dispatch; the records and templates are host_docker_state.py,
# the other commands host_docker_cmds.py.
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mockcloud import hoststate
from mockcloud.host_docker_cmds import info, inspect, logs, ps, pull, rm, stop_or_kill, version
from mockcloud.host_docker_state import (
    BUILD,
    PLAIN_REPOS,
    VERSION,
    VLLM_REPO,
    DockerError,
    denied,
    find,
    follow,
    host_knobs,
    image_ref,
    load_all,
    locked,
    now_iso,
    remove_record,
    save,
    state_dir,
    status_of,
    update,
)
from mockcloud.hostbase import tool_argv

RUN_VALUE_FLAGS = {
    "--name", "-p", "--publish", "-e", "--env", "--env-file", "-v", "--volume", "--mount", "--restart",
    "--runtime", "--gpus", "--ipc", "--shm-size", "-u", "--user", "--network", "--net", "--entrypoint", "-w",
    "--workdir", "-l", "--label", "--log-driver", "--log-opt", "--ulimit", "--cpus", "-m", "--memory",
    "--pull",
    "--hostname", "-h", "--add-host", "--device", "--cap-add", "--security-opt", "--platform", "--health-cmd",
    "--health-interval", "--health-retries", "--health-timeout", "--health-start-period", "--stop-timeout",
    "--stop-signal", "--cidfile", "--memory-swap", "--pid", "--group-add", "--tmpfs", "--dns", "--expose",
}

RUN_BOOL_FLAGS = {"-d", "--detach", "--rm", "-i", "--interactive", "-t", "--tty", "--init", "--privileged",
                  "-P", "--publish-all", "--read-only", "--no-healthcheck", "-q", "--quiet"}

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def parse_run(argv: list[str]) -> tuple[dict[str, list[str]], set[str], str, list[str]]:
    values: dict[str, list[str]] = {}
    flags: set[str] = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            return values, flags, arg, argv[i + 1:]
        key, eq, inline = arg.partition("=")
        if key in RUN_VALUE_FLAGS:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise DockerError(f"flag needs an argument: {key}\nSee 'docker run --help'.", 125)
                inline = argv[i]
            values.setdefault(key, []).append(inline)
        elif key in RUN_BOOL_FLAGS:
            flags.add(key)
        elif re.fullmatch(r"-[ditP]+", arg):
            flags.update(f"-{c}" for c in arg[1:])
        else:
            raise DockerError(f"unknown flag: {key}\nSee 'docker run --help'.", 125)
        i += 1
    raise DockerError('"docker run" requires at least 1 argument.\nSee \'docker run --help\'.', 125)


RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")


def restart_policy(values: dict[str, list[str]], flags: set[str]) -> dict[str, Any]:
    """`--restart NAME[:N]` as docker parses (CLI) and validates it (daemon); recorded as HostConfig.RestartPolicy."""
    spec = (values.get("--restart") or ["no"])[-1]
    name, colon, count = spec.partition(":")
    if colon and not name:
        raise DockerError("docker: invalid restart policy format: no policy provided before colon", 125)
    if count and not count.lstrip("-").isdigit():
        raise DockerError("docker: invalid restart policy format: maximum retry count must be an integer", 125)
    if "--rm" in flags and name not in ("", "no"):
        raise DockerError("docker: conflicting options: cannot specify both --restart and --rm\n"
                          "See 'docker run --help'.", 125)
    if name not in RESTART_POLICIES:
        raise DockerError(f"docker: Error response from daemon: invalid restart policy: unknown policy '{name}'; "
                          "use one of 'no', 'always', 'on-failure', or 'unless-stopped'", 125)
    if count and name != "on-failure":
        raise DockerError("docker: Error response from daemon: invalid restart policy: maximum retry count can "
                          "only be used with 'on-failure'", 125)
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def engine_port(args: list[str]) -> int:
    for i, arg in enumerate(args):
        if arg == "--port" and i + 1 < len(args):
            return int(args[i + 1])
        if arg.startswith("--port="):
            return int(arg.split("=", 1)[1])
    return 8000


def run(argv: list[str]) -> int:
    from mockcloud.engine_common import ENGINE_MODULES, launch  # http.server: only `run` needs it

    values, flags, image, args = parse_run(argv)
    restart = restart_policy(values, flags)
    repo, tag = image_ref(image)
    full = f"{repo}:{tag}"
    if repo != VLLM_REPO and repo not in PLAIN_REPOS and repo not in ENGINE_MODULES:
        sys.stderr.write(f"Unable to find image '{full}' locally\n")
        raise DockerError(f"docker: {denied(repo)}.\nSee 'docker run --help'.", 125)
    name = (values.get("--name") or [""])[-1]
    if name and not NAME_RE.match(name):
        raise DockerError(f"docker: Error response from daemon: Invalid container name ({name}), only "
                          "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed.\nSee 'docker run --help'.", 125)
    import secrets

    cid = secrets.token_hex(32)
    name = name.lstrip("/") or f"mock_{cid[:8]}"
    gpus = "--gpus" in values or "nvidia" in values.get("--runtime", [])
    knobs = host_knobs()
    # no nvidia runtime (F3), driver not loaded, or the image needs a newer CUDA than the driver (F4)
    gpu_problem = hoststate.container_gpu_error(knobs, hoststate.load(hoststate.host_home()), repo,
                                                values.get("-e", []) + values.get("--env", [])) if gpus else None
    if gpu_problem:
        raise DockerError(gpu_problem + "\nSee 'docker run --help'.", 125)
    env = container_env(values)
    port = engine_port(args)
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in values.get("-p", []) + values.get("--publish", []):
        parts = spec.split("/")[0].split(":")
        host_ip, host_port, container_port = (["", *parts] if len(parts) == 2 else parts)[-3:]
        bindings.setdefault(f"{container_port}/tcp", []).append({"HostIp": host_ip, "HostPort": host_port})
    if repo == VLLM_REPO:
        command = [sys.executable, "-m", "mockcloud.engine", "serve", *args]
        if (values.get("--network") or values.get("--net") or [""])[-1] != "host":
            published = bindings.get(f"{port}/tcp")
            env["MOCKENGINE_BIND_PORT"] = published[0]["HostPort"] if published else "0"
            host_ip = published[0]["HostIp"] if published else "127.0.0.1"
            if host_ip not in ("", "0.0.0.0"):
                env["MOCKENGINE_BIND_HOST"] = host_ip
        entrypoint, cmd = ["vllm", "serve"], args
    elif repo in ENGINE_MODULES:  # Triton / TF Serving: mockcloud/engine_triton.py, engine_tfserving.py
        try:
            env.update(launch(repo, tag, values, gpus, args))
        except RuntimeError as exc:
            raise DockerError(f"{exc}\nRun 'docker run --help' for more information", 125) from None
        command = [sys.executable, "-m", ENGINE_MODULES[repo], *args]
        entry = "/opt/nvidia/nvidia_entrypoint.sh" if "nvidia" in repo else "/usr/bin/tf_serving_entrypoint.sh"
        if repo.endswith("/dcgm-exporter"):
            entry = "/usr/local/dcgm/dcgm-exporter-entrypoint.sh"
        entrypoint, cmd = [entry], args
    else:
        command = args or ["true"]
        entrypoint, cmd = [], args
    with locked():
        clash = find(name)
        if clash is not None and clash["Name"] == "/" + name:
            raise DockerError(
                f'docker: Error response from daemon: Conflict. The container name "/{name}" is already in '
                f'use by container "{clash["Id"]}". You have to remove (or rename) that container to be able '
                "to reuse that name.\nSee 'docker run --help'.", 125)
        record: dict[str, Any] = {
            "Id": cid, "Created": now_iso(), "Name": "/" + name, "Path": (entrypoint or command)[0],
            "Args": redact((entrypoint + cmd)[1:] if entrypoint else command[1:]), "Image": full,
            "State": {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
                      "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                      "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"},
            "LogPath": str(state_dir() / f"{cid}.log"), "RestartCount": 0, "SupervisorPid": 0,
            "Detached": "-d" in flags or "--detach" in flags,
            "Config": {"Image": full, "Entrypoint": entrypoint, "Cmd": redact(cmd), "Env": sorted(env)},
            "HostConfig": {"PortBindings": bindings, "AutoRemove": "--rm" in flags,
                           "RestartPolicy": restart,
                           "Runtime": (values.get("--runtime") or ["runc"])[-1],
                           "IpcMode": (values.get("--ipc") or ["private"])[-1],
                           "Gpus": values.get("--gpus", [])},
            "NetworkSettings": {"Ports": bindings},
        }
        save(record)
        if restart["Name"] in ("always", "unless-stopped"):
            # What dockerd keeps in /var/lib/docker/containers/<id>/config.v2.json (root only) to start it at boot.
            spec = state_dir() / f"{cid}.spec"
            fd = os.open(spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump({"command": command, "env": env}, handle)
    launch_supervisor(cid, command, env)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and status_of(cid) == "created":
        time.sleep(0.01)
    if record["Detached"]:
        print(cid)
        return 0
    code = follow(cid, from_start=True)
    if record["HostConfig"]["AutoRemove"]:
        remove_record(record)
    return code


def launch_supervisor(cid: str, command: list[str], env: dict[str, str]) -> None:
    import subprocess

    with open(state_dir() / f"{cid}.log", "ab") as log:
        subprocess.Popen(tool_argv("host_docker", "__supervise", cid, *command),
                         env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)


def boot() -> int:
    """dockerd starting at boot: containers with restart policy `always`, or `unless-stopped` and not stopped by
    `docker stop`/`kill`, are started again (with the config docker kept); the rest stay exited."""
    started = []
    for record in load_all():
        policy = record["HostConfig"]["RestartPolicy"]["Name"]
        spec_file = state_dir() / f"{record['Id']}.spec"
        wanted = policy == "always" or (policy == "unless-stopped" and not record.get("ManuallyStopped"))
        if not wanted or record["State"]["Status"] == "running" or not spec_file.exists():
            continue
        spec = json.loads(spec_file.read_text())
        update(record["Id"], Status="created", Running=False, Pid=0)
        launch_supervisor(record["Id"], list(spec["command"]), dict(spec["env"]))
        started.append(record["Id"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(status_of(cid) == "created" for cid in started):
        time.sleep(0.01)
    return 0


def redact(args: list[str]) -> list[str]:
    out, hide = [], False
    for arg in args:
        out.append("<redacted>" if hide else re.sub(r"^(--(api-key|hf-token)=).*", r"\1<redacted>", arg))
        hide = arg in ("--api-key", "--hf-token")
    return out


def container_env(values: dict[str, list[str]]) -> dict[str, str]:
    keep = ("PATH", "MOCKHOST_HOME", "MOCKHOST_IP", "MOCKHOST_NAME", "MOCKCLOUD_PYTHON", "PYTHONPATH", "LANG")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["HOME"] = os.environ.get("HOME", "/root")
    pairs = [line for f in values.get("--env-file", []) for line in Path(f).read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    for pair in pairs + values.get("-e", []) + values.get("--env", []):
        key, eq, value = pair.partition("=")
        if eq:
            env[key] = value
        elif key in os.environ:
            env[key] = os.environ[key]
    return env


def supervise(cid: str, command: list[str]) -> int:
    """The container's life: run the process, forward SIGTERM/SIGINT, record the exit code."""
    import subprocess

    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    with locked():
        path = state_dir() / f"{cid}.json"
        record = json.loads(path.read_text())
        record["SupervisorPid"] = os.getpid()
        record["State"].update(Status="running", Running=True, Pid=child.pid, StartedAt=now_iso())
        save(record)
    code = child.wait()
    code = 128 - code if code < 0 else code
    update(cid, Status="exited", Running=False, Pid=0, ExitCode=code, FinishedAt=now_iso())
    record = find(cid)
    if record is not None and record["HostConfig"]["AutoRemove"] and record.get("Detached"):
        remove_record(record)
    return 0


def main(argv: list[str]) -> int:
    knobs = host_knobs()
    if argv[:1] == ["__supervise"]:
        return supervise(argv[1], argv[2:])
    if argv[:1] == ["__boot"]:
        return boot()
    if not hoststate.docker_present(knobs, hoststate.load(hoststate.host_home())):  # no_docker until apt installs it
        sys.stderr.write("bash: line 1: docker: command not found\n")
        return 127
    if argv[:1] in (["--version"], ["-v"]):
        print(f"Docker version {VERSION}, build {BUILD}")
        return 0
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "container" and rest:
        command, rest = ("ps", rest[1:]) if rest[0] in ("ls", "list") else (rest[0], rest[1:])
    handlers: dict[str, Callable[[list[str]], int]] = {
        "run": run, "ps": ps, "inspect": inspect, "logs": logs, "rm": rm, "info": info, "version": version,
        "pull": pull, "stop": lambda a: stop_or_kill(a, 10.0), "kill": lambda a: stop_or_kill(a, 0.0),
    }
    if command not in handlers:
        sys.stderr.write(f"docker: unknown command: docker {command}\n\n"
                         "Run 'docker --help' for more information\n")
        return 1
    try:
        return handlers[command](rest)
    except DockerError as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
