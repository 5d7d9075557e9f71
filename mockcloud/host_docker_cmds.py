# The mock docker CLI's commands other than `run` (mockcloud/host_docker.py dispatches): ps, inspect, logs,
# stop/kill, rm, info, version, pull, as docker prints them.
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from mockcloud import hoststate
from mockcloud.host_docker_state import (
    BUILD,
    PLAIN_REPOS,
    RUNTIMES,
    VERSION,
    VLLM_REPO,
    DockerError,
    age,
    denied,
    find,
    follow,
    host_knobs,
    human,
    image_ref,
    last,
    load_all,
    locked,
    now_iso,
    remove_record,
    render,
    save,
    state_dir,
    update,
)
from mockcloud.hostbase import pid_alive


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
