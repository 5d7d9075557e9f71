"""Shared by the mock Triton and TF Serving engines: docker wiring (ports, mounts), pid files, raw metrics."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mockcloud.hostbase import DEFAULT_KNOBS, read_knobs

# image repository -> mock module (the docker shim runs ``python -m <module> <container args>``)
ENGINE_MODULES = {
    "nvcr.io/nvidia/tritonserver": "mockcloud.engine_triton",
    "tensorflow/serving": "mockcloud.engine_tfserving",
    "nvcr.io/nvidia/k8s/dcgm-exporter": "mockcloud.engine_dcgm",  # NVIDIA's GPU metrics exporter (port 9400)
}
PORTS_ENV, MOUNTS_ENV, GPU_ENV = "MOCKENGINE_PORTS", "MOCKENGINE_MOUNTS", "MOCKENGINE_GPU"


# ---------------------------------------------------------------- docker side (called by the docker shim)


def _driver_major(driver: str) -> int:
    match = re.match(r"(\d+)", driver)
    return int(match.group(1)) if match else 0


def cuda_requirement(repo: str, tag: str) -> tuple[str, int] | None:
    """(CUDA version the image requires, oldest driver branch that has it) — engines.md §2.1, §4.1."""
    if repo == "nvcr.io/nvidia/tritonserver":
        match = re.match(r"(\d\d)\.(\d\d)", tag)
        if match and (int(match.group(1)), int(match.group(2))) >= (25, 8):
            return "13.0", 575
        if match and (int(match.group(1)), int(match.group(2))) >= (25, 3):
            return "12.8", 560
        return None
    if repo == "tensorflow/serving" and "gpu" in tag:
        return "12.2", 535
    return None


def launch(repo: str, tag: str, values: dict[str, list[str]], gpus: bool, args: list[str]) -> dict[str, str]:
    """Environment for a mock engine container; raises RuntimeError(docker's message) when it cannot start."""
    need = cuda_requirement(repo, tag) if gpus else None
    home = os.environ.get("MOCKHOST_HOME")
    knobs = read_knobs(home) if home else dict(DEFAULT_KNOBS)
    if need and _driver_major(str(knobs["driver"])) < need[1]:
        raise RuntimeError(
            "docker: Error response from daemon: failed to create task for container: failed to create shim "
            "task: OCI runtime create failed: runc create failed: unable to start container process: error "
            "during container init: error running prestart hook #0: exit status 1, stdout: , stderr: "
            "Auto-detected mode as 'legacy'\nnvidia-container-cli: requirement error: unsatisfied condition: "
            f"cuda>={need[0]}, please update your driver to a newer version, or use an earlier cuda container: "
            "unknown."
        )
    ports: dict[str, list[str]] = {}
    for spec in values.get("-p", []) + values.get("--publish", []):
        parts = spec.split("/")[0].split(":")
        host_ip, host_port, container_port = (["", *parts] if len(parts) == 2 else parts)[-3:]
        ports[container_port] = [host_ip, host_port]
    mounts: list[list[str]] = []
    for spec in values.get("-v", []) + values.get("--volume", []):
        source, _, rest = spec.partition(":")
        mounts.append([source, rest.split(":")[0]])
    for spec in values.get("--mount", []):
        opts = dict(p.partition("=")[::2] for p in spec.split(","))
        mounts.append([opts.get("source") or opts.get("src", ""), opts.get("target") or opts.get("dst", "")])
    return {
        PORTS_ENV: json.dumps(ports),
        MOUNTS_ENV: json.dumps(mounts),
        GPU_ENV: "1" if gpus and (repo != "tensorflow/serving" or "gpu" in tag) else "0",
    }


# ---------------------------------------------------------------- container side (the mock engines)


def knobs() -> dict[str, Any]:
    home = os.environ.get("MOCKHOST_HOME")
    return read_knobs(home) if home else dict(DEFAULT_KNOBS)


def host_path(container_path: str) -> Path:
    """Where a container path lives on the host, through the -v/--mount binds (longest target first)."""
    mounts = json.loads(os.environ.get(MOUNTS_ENV) or "[]")
    for source, target in sorted(mounts, key=lambda m: -len(m[1])):
        target = target.rstrip("/") or "/"
        if container_path == target or container_path.startswith(target + "/"):
            return Path(source + container_path[len(target) :])
    return Path("/nonexistent-in-mock-container") / container_path.lstrip("/")


def bind_address(container_port: int) -> tuple[str, int] | None:
    """The host address a published container port listens on; None when it is not published."""
    ports = json.loads(os.environ.get(PORTS_ENV) or "{}")
    if str(container_port) not in ports:
        return None
    host_ip, host_port = ports[str(container_port)]
    if host_ip in ("", "0.0.0.0"):
        host_ip = os.environ.get("MOCKHOST_IP") or "127.0.0.1"
    return host_ip, int(host_port)


def has_gpu() -> bool:
    return os.environ.get(GPU_ENV) == "1"


@contextlib.contextmanager
def registered(kind: str, gpu_mem_mib: int) -> Iterator[None]:
    """The host's run/pids entry, so nvidia-smi shows the memory and poweroff finds the engine."""
    home = os.environ.get("MOCKHOST_HOME")
    entry = Path(home) / "run" / "pids" / str(os.getpid()) if home else None
    if entry is not None and entry.parent.is_dir():
        with contextlib.suppress(OSError):
            entry.write_text(json.dumps({"pid": os.getpid(), "kind": kind, "gpu_mem_mib": gpu_mem_mib}) + "\n")
    try:
        yield
    finally:
        if entry is not None:
            with contextlib.suppress(OSError):
                entry.unlink()


def stop_event() -> threading.Event:
    """Set on SIGTERM/SIGINT (docker stop / rm -f forward them)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


class Servers:
    """HTTP servers on published ports, each on its own thread; ``close()`` stops them all."""

    def __init__(self) -> None:
        self.servers: list[ThreadingHTTPServer] = []

    def start(self, container_port: int, handler: type[BaseHTTPRequestHandler], **attrs: Any) -> bool:
        address = bind_address(container_port)
        if address is None:
            return False
        server = ThreadingHTTPServer(address, handler)
        server.daemon_threads = True
        for key, value in attrs.items():
            setattr(server, key, value)
        self.servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        return True

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        self.servers = []


class JsonHandler(BaseHTTPRequestHandler):
    """Quiet request handler with JSON helpers."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass

    def send(self, code: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def json(self, code: int, payload: Any) -> None:
        self.send(code, json.dumps(payload).encode())

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


class RawMetrics:
    """Metric families in the text format, with the exact names C++ servers expose.

    prometheus_client's exposition would rename a counter's HELP/TYPE lines to ``<name>_total``; Triton and
    TF Serving do not, so the text is rendered here (values formatted by prometheus_client).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.families: dict[str, tuple[str, str]] = {}
        self.samples: dict[tuple[str, str, tuple[tuple[str, str], ...]], float] = {}

    def declare(self, name: str, kind: str, help_text: str) -> None:
        self.families[name] = (kind, help_text)

    def set(self, name: str, labels: dict[str, str], value: float, sample: str = "") -> None:
        with self.lock:
            self.samples[(name, sample or name, tuple(sorted(labels.items())))] = value

    def inc(self, name: str, labels: dict[str, str], value: float = 1.0, sample: str = "") -> None:
        key = (name, sample or name, tuple(sorted(labels.items())))
        with self.lock:
            self.samples[key] = self.samples.get(key, 0.0) + value

    def observe(self, name: str, labels: dict[str, str], value: float, buckets: tuple[float, ...]) -> None:
        from prometheus_client.utils import floatToGoString

        for le in (*buckets, float("inf")):
            self.inc(name, {**labels, "le": floatToGoString(le)}, 1.0 if value <= le else 0.0, f"{name}_bucket")
        self.inc(name, labels, value, sample=f"{name}_sum")
        self.inc(name, labels, 1.0, sample=f"{name}_count")

    def render(self) -> bytes:
        from prometheus_client.utils import floatToGoString

        with self.lock:
            samples = sorted(self.samples.items())
        out: list[str] = []
        for name, (kind, help_text) in self.families.items():
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            for (family, sample, labels), value in samples:
                if family == name:
                    text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    out.append(f"{sample}{{{text}}} " if text else f"{sample} ")
                    out[-1] += floatToGoString(value)
        return ("\n".join(out) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def log_stamp() -> str:
    now = time.time()
    return time.strftime("%m%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"


def emit(line: str, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(line + "\n")
    stream.flush()


# ---------------------------------------------------------------- protobuf text format (config.pbtxt & co.)

_TOKEN = re.compile(r'\s+|#[^\n]*|("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{}\[\]<>:,;]|[^\s{}\[\]<>:,;"\'#]+)')


def parse_pbtxt(text: str) -> dict[str, list[Any]]:
    """A small protobuf text-format parser: every field maps to the list of its values; messages are dicts.

    Scalars stay strings (quotes removed); raises ValueError on malformed text, as protobuf's parser would.
    """
    tokens = [m.group(1) for m in _TOKEN.finditer(text) if m.group(1)]
    if "".join(m.group(0) for m in _TOKEN.finditer(text)) != text:
        raise ValueError("unexpected character")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("unexpected end of input")
        pos += 1
        return tokens[pos - 1]

    def scalar(token: str) -> str:
        if token[0] in "\"'":
            return token[1:-1].encode().decode("unicode_escape")
        if token in "{}[]<>:,;":
            raise ValueError(f"expected a value, found {token!r}")
        return token

    def value() -> Any:
        token = take()
        if token in "{<":
            return message("}" if token == "{" else ">")
        return scalar(token)

    def message(end: str | None) -> dict[str, list[Any]]:
        fields: dict[str, list[Any]] = {}
        while True:
            token = peek()
            if token is None or token == end:
                if token != end:
                    raise ValueError(f"missing {end!r}")
                if end is not None:
                    take()
                return fields
            name = take()
            if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
                raise ValueError(f"expected a field name, found {name!r}")
            colon = peek() == ":"
            if colon:
                take()
            if peek() == "[":
                take()
                while peek() != "]":
                    fields.setdefault(name, []).append(value())
                    if peek() == ",":
                        take()
                take()
            elif not colon and peek() not in ("{", "<"):
                raise ValueError(f"expected ':' after {name!r}")
            else:
                fields.setdefault(name, []).append(value())
            if peek() in (",", ";"):
                take()

    return message(None)


def first(fields: dict[str, list[Any]], name: str, default: Any = None) -> Any:
    values = fields.get(name) or [default]
    return values[0]
