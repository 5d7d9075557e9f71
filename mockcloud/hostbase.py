"""What a mock host's own tools need of mockcloud: its knobs, and its processes (alive? power off).

Every fake tool on a host (docker, nvidia-smi, sudo, systemctl, ...) and every mock engine is a new Python process,
so this module imports only what these need: hosts.py (the cloud side: sshd, users, namespaces, in host_sshd.py,
host_runtime.py, host_network.py) costs ~45 ms to import, a large part of the mock cloud's CPU when eight hosts
deploy at once. hosts.py re-exports these names.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ENGINE_FAILURES = ("kv_cache", "oom", "gated", "free_memory")
DEFAULT_KNOBS: dict[str, Any] = {
    "gpu_count": 1,
    "gpu_name": "NVIDIA L40S",
    "gpu_mem_mib": 46068,
    "driver": "580.95.05",
    "nvsmi_fail": False,
    "engine_startup_delay": 1.0,
    "engine_fail": None,
    "engine_health_fail_after": None,
    "engine_ttft": 0.0,  # seconds before a completion's first token (mock vLLM; read per request)
    "engine_token_delay": 0.0,  # seconds between successive tokens of a completion (mock vLLM; read per request)
    "engine_infer_delay": 0.0,  # seconds each inference request takes (mock Triton; read per request)
    "triton_model_fail": None,  # a model name (or "*"): the mock Triton cannot load it (UNAVAILABLE, F14)
    "no_docker": False,
    "no_driver": False,  # nvidia-smi: not found (127) until apt installs the driver, then exit 9 until a reboot
    "no_toolkit": False,  # no nvidia-ctk, no nvidia runtime in docker (docker run --gpus: F3) until installed
    "no_runtime": False,  # the toolkit is installed, docker has no nvidia runtime until nvidia-ctk configures it
    "no_ctk_cli": False,  # docker has the nvidia runtime, but nvidia-ctk is not installed
    "no_build_tools": False,  # no build-essential / python3-dev (dpkg-query) until apt installs them
    "driver_cuda": None,  # the driver's "CUDA Version" (default: what the driver branch supports), for F4/F5
}


# ---------------------------------------------------------------- knobs

# How a host tool's module runs (the shims in hostbin/ and the tools' own children): `-c`, not the module's file as a
# script, so the module's cached bytecode is used; the import root comes first on sys.path, replacing the directory
# the command runs in (which could shadow a module).
TOOL_CODE = "import sys; sys.path[0] = sys.argv.pop(1); from mockcloud.{} import main; sys.exit(main(sys.argv[1:]))"
ROOT = str(Path(__file__).resolve().parent.parent)


def tool_argv(module: str, *args: str) -> list[str]:
    """argv that runs ``mockcloud.<module>``'s ``main(args)`` under this python."""
    return [sys.executable, "-c", TOOL_CODE.format(module), ROOT, *args]


def read_knobs(home: Path | str) -> dict[str, Any]:
    """The host's knobs: defaults overlaid with ``<home>/knobs.json`` (a broken file means defaults)."""
    knobs = dict(DEFAULT_KNOBS)
    with contextlib.suppress(OSError, ValueError):
        stored = json.loads((Path(home) / "knobs.json").read_text())
        if isinstance(stored, dict):
            knobs.update({k: v for k, v in stored.items() if k in DEFAULT_KNOBS})
    return knobs


def write_knobs(path: Path, knobs: dict[str, Any]) -> None:
    """Validate and atomically replace a knobs file (mode 0644, so the login user can read it)."""
    unknown = sorted(set(knobs) - set(DEFAULT_KNOBS))
    if unknown:
        raise ValueError(f"unknown knob(s) {unknown}; known: {sorted(DEFAULT_KNOBS)}")
    if knobs.get("engine_fail") not in (None, *ENGINE_FAILURES):
        raise ValueError(f"engine_fail must be null or one of {ENGINE_FAILURES}, not {knobs['engine_fail']!r}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(knobs, indent=1, sort_keys=True) + "\n")
    tmp.chmod(0o644)
    tmp.replace(path)


# ---------------------------------------------------------------- processes


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[1])


def pid_alive(pid: int) -> bool:
    """True when the process exists and is not a zombie (orphans are reaped late here)."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _descendants(root_pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat is not None:
            children.setdefault(stat[1], []).append(pid)
    found: list[int] = []
    todo = list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _ancestors(pid: int) -> set[int]:
    seen = {pid}
    stat = _proc_stat(pid)
    while stat is not None and stat[1] > 1 and stat[1] not in seen:
        seen.add(stat[1])
        stat = _proc_stat(stat[1])
    return seen


def _has_env(pid: int, needle: bytes) -> bool:
    try:
        return needle in b"\0" + Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def terminate_pids(pids: Iterable[int], grace: float = 5.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL whatever is still alive."""
    live = {p for p in pids if pid_alive(p)}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        for pid in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while live and time.monotonic() < deadline:
            time.sleep(0.02)
            live = {p for p in live if pid_alive(p)}
        if not live:
            return


def poweroff_host(home: Path | str) -> int:
    """Kill every process started on a host (engines, containers, shells); safe to repeat."""
    home = Path(home)
    needle = b"\0MOCKHOST_HOME=" + bytes(home) + b"\0"
    spared = _ancestors(os.getpid())
    victims = {pid for pid in _all_pids() if pid not in spared and _has_env(pid, needle)}
    terminate_pids(victims)
    pids_dir = home / "run" / "pids"
    if pids_dir.is_dir():
        for entry in pids_dir.iterdir():
            if not (entry.name.isdigit() and pid_alive(int(entry.name))):
                with contextlib.suppress(OSError):
                    entry.unlink()
    return len(victims)
