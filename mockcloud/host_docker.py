# Mock `docker` CLI for mockcloud hosts, run by the shim mockcloud/hostbin/docker (a module: its bytecode is cached;
# the modules a call may not need are imported where used). Just enough of run/ps/inspect/logs/stop/kill/rm/info/
# version/pull for `vllm/vllm-openai:<tag>` (entrypoint `vllm serve`: the mock engine).
# A "container" is a detached supervisor process that runs the engine and records its state in
# $MOCKHOST_HOME/containers/<id>.json (no secrets: env values are never stored); its log is <id>.log there.
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mockcloud import hoststate
from mockcloud.hostbase import DEFAULT_KNOBS, pid_alive, read_knobs, tool_argv

VERSION, BUILD = "28.5.1", "e180ab8"
VLLM_REPO = "vllm/vllm-openai"
PLAIN_REPOS = ("ubuntu", "nvidia/cuda", "busybox", "alpine", "debian")
RUNTIMES = {"io.containerd.runc.v2": {"path": "runc"}, "nvidia": {"path": "nvidia-container-runtime"},
            "runc": {"path": "runc"}}
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


class DockerError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- container records


def state_dir() -> Path:
    home = os.environ.get("MOCKHOST_HOME") or os.path.expanduser("~/.mockdocker")
    folder = Path(home) / "containers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def locked() -> Iterator[None]:
    with open(state_dir() / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def save(record: dict[str, Any]) -> None:
    path = state_dir() / f"{record['Id']}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


def load_all() -> list[dict[str, Any]]:
    records = []
    for path in sorted(state_dir().glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            records.append(refresh(json.loads(path.read_text())))
    return sorted(records, key=lambda r: r["Created"], reverse=True)


def refresh(record: dict[str, Any]) -> dict[str, Any]:
    """A container whose supervisor died without recording an exit was killed: exited 137."""
    state = record["State"]
    if state["Status"] == "running" and not pid_alive(int(record.get("SupervisorPid") or 0)):
        state.update(Status="exited", Running=False, Pid=0, ExitCode=137, FinishedAt=now_iso())
    return record


def find(ref: str) -> dict[str, Any] | None:
    ref = ref.lstrip("/")
    records = load_all()
    for record in records:
        if record["Name"] == "/" + ref or record["Id"] == ref:
            return record
    prefixed = [r for r in records if ref and r["Id"].startswith(ref)]
    return prefixed[0] if len(prefixed) == 1 else None


def update(cid: str, **state: Any) -> None:
    with locked():
        path = state_dir() / f"{cid}.json"
        if path.exists():
            record = json.loads(path.read_text())
            record["State"].update(state)
            save(record)


def remove_record(record: dict[str, Any]) -> None:
    for suffix in (".json", ".log", ".spec"):
        with contextlib.suppress(OSError):
            (state_dir() / f"{record['Id']}{suffix}").unlink()


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"


def age(iso: str) -> float:
    with contextlib.suppress(ValueError):
        import calendar

        return max(0.0, time.time() - calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")))
    return 0.0


def human(seconds: float) -> str:
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    if seconds < 120:
        return "About a minute"
    if seconds < 3600:
        return f"{int(seconds // 60)} minutes"
    return "About an hour" if seconds < 7200 else f"{int(seconds // 3600)} hours"


# ---------------------------------------------------------------- templates


def lookup(data: Any, path: str) -> Any:
    for part in [p for p in path.split(".") if p]:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def render(template: str, data: Any) -> str:
    """The subset of Go templates people use with docker: {{.A.B}} and {{json .A}}."""
    def one(match: re.Match[str]) -> str:
        value = data if match.group(2) in ("", ".") else lookup(data, match.group(2))
        if match.group(1):
            return json.dumps(value, separators=(",", ":"))
        if value is None:
            return "<no value>"
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value) if isinstance(value, (dict, list)) else str(value)

    template = template.replace("\\t", "\t").replace("\\n", "\n")
    return re.sub(r"\{\{\s*(json\s+)?(\.[\w.]*)\s*\}\}", one, template)


# ---------------------------------------------------------------- run


def denied(repo: str) -> str:
    return (f"Error response from daemon: pull access denied for {repo}, repository does not exist or may "
            "require 'docker login': denied: requested access to the resource is denied")


def host_knobs() -> dict[str, Any]:
    home = os.environ.get("MOCKHOST_HOME")
    return read_knobs(home) if home else dict(DEFAULT_KNOBS)


def image_ref(image: str) -> tuple[str, str]:
    repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
    return repo.removeprefix("docker.io/").removeprefix("library/"), tag or "latest"


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


def status_of(cid: str) -> str:
    record = find(cid)
    return str(record["State"]["Status"]) if record else "gone"


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


# ---------------------------------------------------------------- the other commands


def need(ref: str) -> dict[str, Any]:
    record = find(ref)
    if record is None:
        raise DockerError(f"Error response from daemon: No such container: {ref}")
    return record


def ps_row(record: dict[str, Any], no_trunc: bool) -> dict[str, Any]:
    state = record["State"]
    if state["Status"] == "running":
        status = f"Up {human(age(state['StartedAt']))}"
    elif state["Status"] == "exited":
        status = f"Exited ({state['ExitCode']}) {human(age(state['FinishedAt']))} ago"
    else:
        status = "Created"
    ports = ", ".join(f"{b['HostIp'] or '0.0.0.0'}:{b['HostPort']}->{cport}"
                      for cport, binds in record["HostConfig"]["PortBindings"].items() for b in binds)
    command = " ".join([record["Path"], *record["Args"]])
    return {"ID": record["Id"] if no_trunc else record["Id"][:12], "Image": record["Image"],
            "Command": f'"{command}"' if no_trunc or len(command) <= 20 else f'"{command[:19]}…"',
            "CreatedAt": record["Created"], "RunningFor": f"{human(age(record['Created']))} ago",
            "Status": status, "State": state["Status"], "Ports": ports, "Names": record["Name"].lstrip("/")}


def ps(argv: list[str]) -> int:
    argv = [p for a in argv for p in ([f"-{c}" for c in a[1:]] if re.fullmatch(r"-[aqsl]{2,}", a) else [a])]
    show_all = bool({"-a", "--all"} & set(argv))
    quiet, no_trunc = bool({"-q", "--quiet"} & set(argv)), "--no-trunc" in argv
    filters, fmt = [], ""
    for i, arg in enumerate(argv):
        if arg in ("-f", "--filter") and i + 1 < len(argv):
            filters.append(argv[i + 1])
        elif arg.startswith("--filter="):
            filters.append(arg.split("=", 1)[1])
        elif arg == "--format" and i + 1 < len(argv):
            fmt = argv[i + 1]
        elif arg.startswith("--format="):
            fmt = arg.split("=", 1)[1]
    rows = []
    for record in load_all():
        row = ps_row(record, no_trunc)
        if not show_all and row["State"] != "running" and not any(f.startswith("status=") for f in filters):
            continue
        if all(matches(record, row, f) for f in filters):
            rows.append(row)
    if quiet:
        print("\n".join(r["ID"] for r in rows) + ("\n" if rows else ""), end="")
    elif fmt and fmt.removeprefix("table").strip():
        body = fmt.removeprefix("table").strip()
        if fmt.startswith("table"):
            print(render(re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda m: m.group(1).upper(), body), {}))
        for row in rows:
            print(render(body, row))
    else:
        columns = [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"),
                   ("CREATED", "RunningFor"), ("STATUS", "Status"), ("PORTS", "Ports"), ("NAMES", "Names")]
        widths = [max([len(h), *(len(str(r[k])) for r in rows)]) + 3 for h, k in columns]
        print("".join(h.ljust(w) for (h, _), w in zip(columns, widths, strict=True)).rstrip())
        for row in rows:
            print("".join(str(row[k]).ljust(w) for (_, k), w in zip(columns, widths, strict=True)).rstrip())
    return 0


def matches(record: dict[str, Any], row: dict[str, Any], spec: str) -> bool:
    key, _, value = spec.partition("=")
    if key == "name":
        return re.search(value, row["Names"]) is not None
    if key == "id":
        return str(record["Id"]).startswith(value)
    if key == "status":
        return bool(row["State"] == value)
    if key == "ancestor":
        return image_ref(value) == image_ref(record["Image"])
    raise DockerError(f"Error response from daemon: invalid filter '{key}'")


def inspect(argv: list[str]) -> int:
    fmt, refs, i = "", [], 0
    while i < len(argv):
        if argv[i] in ("-f", "--format", "--type"):
            fmt = argv[i + 1] if argv[i] != "--type" else fmt
            i += 2
            continue
        if argv[i].startswith(("--format=", "--type=")):
            fmt = argv[i].split("=", 1)[1] if argv[i].startswith("--format=") else fmt
        elif argv[i] not in ("-s", "--size"):
            refs.append(argv[i])
        i += 1
    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for ref in refs:
        record = find(ref)
        if record is None:
            missing.append(ref)
        else:
            found.append(record)
    if fmt:
        for record in found:
            print(render(fmt, record))
    else:
        hidden = ("SupervisorPid", "Detached", "ManuallyStopped")
        print(json.dumps([{k: v for k, v in r.items() if k not in hidden} for r in found], indent=4))
    for ref in missing:
        sys.stderr.write(f"Error: No such object: {ref}\n")
    return 1 if missing else 0


def last(lines: list[bytes], tail: int | None) -> list[bytes]:
    return lines if tail is None else lines[len(lines) - tail:] if tail > 0 else []


def follow(cid: str, from_start: bool = False, tail: int | None = None) -> int:
    log = state_dir() / f"{cid}.log"
    offset = 0
    if not from_start and log.exists():
        lines = log.read_bytes().splitlines(keepends=True)
        sys.stdout.buffer.write(b"".join(last(lines, tail)))
        offset = log.stat().st_size
    while True:
        record = find(cid)
        with contextlib.suppress(OSError), open(log, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
            offset += len(chunk)
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        if record is None or record["State"]["Status"] != "running":
            return int(record["State"]["ExitCode"]) if record else 0
        time.sleep(0.1)


GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
GO_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def since_time(value: str) -> float:
    """docker's --since: a Go duration before now (10m, 1h30m), Unix seconds, or an RFC 3339 date/time."""
    if re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+", value):
        return time.time() - sum(float(n) * GO_UNITS[u] for n, u in GO_DURATION.findall(value))
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        with contextlib.suppress(ValueError):
            import calendar

            return float(calendar.timegm(time.strptime(value, fmt)))
    raise DockerError(f'invalid value for "since": failed to parse value as time or duration: "{value}"')


def logs(argv: list[str]) -> int:
    # The mock's log lines carry no times: --since after the log's last write prints nothing, else everything.
    tail: int | None = None
    since: float | None = None
    refs, follow_mode, i = [], False, 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--tail", "-n", "--since", "--until"):
            if i + 1 >= len(argv):
                raise DockerError(f"flag needs an argument: {arg}")
            if arg in ("--tail", "-n") and argv[i + 1] != "all":
                tail = int(argv[i + 1])
            if arg == "--since":
                since = since_time(argv[i + 1])
            i += 1
        elif arg.startswith(("--tail=", "-n=")):
            value = arg.split("=", 1)[1]
            tail = None if value == "all" else int(value)
        elif arg.startswith("--since="):
            since = since_time(arg.split("=", 1)[1])
        elif arg in ("-f", "--follow"):
            follow_mode = True
        elif not arg.startswith("-"):
            refs.append(arg)
        i += 1
    if len(refs) != 1:
        raise DockerError('"docker logs" requires exactly 1 argument.\nSee \'docker logs --help\'.')
    record = need(refs[0])
    log = Path(record["LogPath"])
    quiet = since is not None and (not log.exists() or log.stat().st_mtime < since)
    if follow_mode:
        follow(record["Id"], tail=0 if quiet else tail)
        return 0
    lines = log.read_bytes().splitlines(keepends=True) if log.exists() and not quiet else []
    sys.stdout.buffer.write(b"".join(last(lines, tail)))
    return 0


def kill_container(record: dict[str, Any], grace: float) -> None:
    """SIGTERM the supervisor (it forwards to the process), wait ``grace`` s, then SIGKILL both."""
    sup, pid = int(record.get("SupervisorPid") or 0), int(record["State"]["Pid"] or 0)
    if record["State"]["Status"] != "running":
        return
    if grace > 0 and sup:
        with contextlib.suppress(ProcessLookupError):
            os.kill(sup, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pid_alive(sup):
            time.sleep(0.02)
    for victim in (pid, sup):
        if victim and pid_alive(victim):
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and ((sup and pid_alive(sup)) or (pid and pid_alive(pid))):
        time.sleep(0.02)
    current = find(record["Id"])
    if current is not None and current["State"]["Status"] == "running":
        update(record["Id"], Status="exited", Running=False, Pid=0, ExitCode=137, FinishedAt=now_iso())


def stop_or_kill(argv: list[str], grace: float) -> int:
    refs, i, failed = [], 0, False
    while i < len(argv):
        if argv[i] in ("-t", "--time", "--timeout", "-s", "--signal"):
            grace = float(argv[i + 1]) if argv[i] not in ("-s", "--signal") else grace
            i += 2
            continue
        refs.append(argv[i])
        i += 1
    for ref in refs:
        record = find(ref)
        if record is None:
            sys.stderr.write(f"Error response from daemon: No such container: {ref}\n")
            failed = True
            continue
        kill_container(record, grace)
        with locked():
            path = state_dir() / f"{record['Id']}.json"
            if path.exists():  # `unless-stopped` means: not after an explicit stop/kill, even across reboots
                current = json.loads(path.read_text())
                current["ManuallyStopped"] = True
                save(current)
        print(ref)
    return 1 if failed else 0


def rm(argv: list[str]) -> int:
    force = bool({"-f", "--force"} & set(argv)) or any(re.fullmatch(r"-[fv]+", a) and "f" in a for a in argv)
    failed = False
    for ref in [a for a in argv if not a.startswith("-")]:
        record = find(ref)
        if record is None:
            sys.stderr.write(f"Error response from daemon: No such container: {ref}\n")
            failed = failed or not force
            continue
        if record["State"]["Status"] == "running":
            if not force:
                sys.stderr.write(f'Error response from daemon: cannot remove container "{record["Name"]}": '
                                 "container is running: stop the container before removing or force remove\n")
                failed = True
                continue
            kill_container(record, 0)
        remove_record(record)
        print(ref)
    return 1 if failed else 0


def info(argv: list[str]) -> int:
    runtimes = dict(RUNTIMES)
    if not hoststate.nvidia_runtime(host_knobs(), hoststate.load(hoststate.host_home())):
        runtimes.pop("nvidia")  # NVIDIA Container Toolkit missing, or not configured + docker restarted
    data = {"ServerVersion": VERSION, "Runtimes": runtimes, "DefaultRuntime": "runc", "Driver": "overlay2",
            "OperatingSystem": "Ubuntu 24.04.3 LTS", "NCPU": os.cpu_count() or 1,
            "Containers": len(load_all()),
            "ContainersRunning": sum(r["State"]["Status"] == "running" for r in load_all())}
    fmt = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-f", "--format")), None)
    fmt = fmt or next((a.split("=", 1)[1] for a in argv if a.startswith("--format=")), None)
    if fmt:
        print(render(fmt, data))
        return 0
    print(f"Client: Docker Engine - Community\n Version:    {VERSION}\n\n"
          f"Server:\n Containers: {data['Containers']}\n"
          f"  Running: {data['ContainersRunning']}\n Server Version: {VERSION}\n Storage Driver: overlay2\n"
          f" Runtimes: {' '.join(sorted(runtimes))}\n Default Runtime: runc\n"
          f" Operating System: {data['OperatingSystem']}\n CPUs: {data['NCPU']}")
    return 0


def version(argv: list[str]) -> int:
    data = {"Client": {"Version": VERSION, "ApiVersion": "1.51", "GitCommit": BUILD},
            "Server": {"Version": VERSION, "ApiVersion": "1.51", "MinAPIVersion": "1.24"}}
    fmt = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-f", "--format")), None)
    print(render(fmt, data) if fmt else f"Client: Docker Engine - Community\n Version:           {VERSION}\n"
          f"\nServer: Docker Engine - Community\n Engine:\n  Version:          {VERSION}")
    return 0


def pull(argv: list[str]) -> int:
    from mockcloud.engine_common import ENGINE_MODULES

    image = next((a for a in argv if not a.startswith("-")), "")
    repo, tag = image_ref(image)
    if repo != VLLM_REPO and repo not in PLAIN_REPOS and repo not in ENGINE_MODULES:
        raise DockerError(denied(repo))
    import hashlib

    digest = "sha256:" + hashlib.sha256(f"{repo}:{tag}".encode()).hexdigest()
    print(f"{tag}: Pulling from {repo}\nDigest: {digest}\nStatus: Image is up to date for {repo}:{tag}\n"
          f"{'' if '.' in repo.split('/')[0] else 'docker.io/'}{repo}:{tag}")
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
