# The mock docker CLI's shared part (mockcloud/host_docker.py): its version and images, the container records in
# $MOCKHOST_HOME/containers/<id>.json (no secrets: env values are never stored; the log is <id>.log there),
# Go templates for --format, and following a container's log.
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mockcloud.hostbase import DEFAULT_KNOBS, pid_alive, read_knobs

VERSION, BUILD = "28.5.1", "e180ab8"
VLLM_REPO = "vllm/vllm-openai"
PLAIN_REPOS = ("ubuntu", "nvidia/cuda", "busybox", "alpine", "debian")
RUNTIMES = {"io.containerd.runc.v2": {"path": "runc"}, "nvidia": {"path": "nvidia-container-runtime"},
            "runc": {"path": "runc"}}


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


def denied(repo: str) -> str:
    return (f"Error response from daemon: pull access denied for {repo}, repository does not exist or may "
            "require 'docker login': denied: requested access to the resource is denied")


def host_knobs() -> dict[str, Any]:
    home = os.environ.get("MOCKHOST_HOME")
    return read_knobs(home) if home else dict(DEFAULT_KNOBS)


def image_ref(image: str) -> tuple[str, str]:
    repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
    return repo.removeprefix("docker.io/").removeprefix("library/"), tag or "latest"


def status_of(cid: str) -> str:
    record = find(cid)
    return str(record["State"]["Status"]) if record else "gone"


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
