"""Mock host system state: what the install shims recorded (packages, files, runtime, reboots) and what follows."""

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
from typing import Any, Literal

STATE_NAME = "hoststate.json"
LOG_NAME = "installed.log"
NVIDIA_LIST = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"
NVIDIA_KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
DRIVER_PACKAGE = re.compile(r"nvidia-(headless|utils|driver)-(\d{3})(-server)?(-open)?$|cuda-drivers|nvidia-open")
DOCKER_PACKAGES = ("docker.io", "docker-ce")
TOOLKIT_PACKAGE = "nvidia-container-toolkit"
# The CUDA that each image's NVIDIA_REQUIRE_CUDA asks of the driver (F4 below that).
IMAGE_CUDA = {"vllm/vllm-openai": (12, 8)}
DRIVER_NOT_LOADED = (
    "docker: Error response from daemon: failed to create task for container: failed to create shim "
    "task: OCI runtime create failed: runc create failed: unable to start container process: error "
    "during container init: error running prestart hook #0: exit status 1, stdout: , stderr: "
    "Auto-detected mode as 'legacy'\nnvidia-container-cli: initialization error: nvml error: driver "
    "not loaded: unknown."
)
F3 = 'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].'
F4 = (
    "docker: Error response from daemon: failed to create task for container: failed to create shim task: OCI "
    "runtime create failed: runc create failed: unable to start container process: error during container init: "
    "error running prestart hook #0: exit status 1, stdout: , stderr: Auto-detected mode as 'legacy'\n"
    "nvidia-container-cli: requirement error: unsatisfied condition: cuda>={cuda}, please update your driver to "
    "a newer version, or use an earlier cuda container: unknown."
)


def host_home() -> Path | None:
    home = os.environ.get("MOCKHOST_HOME")
    return Path(home) if home else None


def home_or_exit() -> Path:
    """The host's home, for a host tool: outside a mock host it says so and exits 1."""
    home = host_home()
    if home is None:
        sys.stderr.write("mockcloud host tools run on mock hosts only (MOCKHOST_HOME is not set)\n")
        raise SystemExit(1)
    return home


def load(home: Path | None) -> dict[str, Any]:
    """The recorded state ({} for a host nothing was installed on, or outside a mock host)."""
    if home is None:
        return {}
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((home / STATE_NAME).read_text())
        if isinstance(data, dict):
            return data
    return {}


@contextlib.contextmanager
def updating(home: Path) -> Iterator[dict[str, Any]]:
    """Read-modify-write the state under a lock; the new state lands atomically."""
    with open(home / f".{STATE_NAME}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = load(home)
        yield state
        tmp = home / f".{STATE_NAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
        tmp.replace(home / STATE_NAME)


def record(home: Path, line: str) -> None:
    """Append one line to installed.log: what a real host would have installed or changed."""
    with open(home / LOG_NAME, "a") as log:
        log.write(line.rstrip("\n") + "\n")


def privileged() -> bool:
    """root, or running under (the mock) sudo."""
    return os.geteuid() == 0 or bool(os.environ.get("SUDO_USER"))


def cuda_for_driver(driver: str) -> str:
    major = int(driver.split(".")[0]) if driver.split(".")[0].isdigit() else 580
    for floor, cuda in ((580, "13.0"), (575, "12.9"), (570, "12.8"), (560, "12.6"), (550, "12.4"), (535, "12.2")):
        if major >= floor:
            return cuda
    return "12.0"


def driver_cuda(knobs: dict[str, Any]) -> str:
    """The 'CUDA Version' the driver supports: the driver_cuda knob, else what its branch supports."""
    return str(knobs.get("driver_cuda") or cuda_for_driver(str(knobs["driver"])))


def cuda_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def packages(state: dict[str, Any]) -> list[str]:
    return [str(p) for p in state.get("packages", [])]


def driver_installed(knobs: dict[str, Any], state: dict[str, Any]) -> bool:
    return not knobs.get("no_driver") or any(DRIVER_PACKAGE.match(p) for p in packages(state))


def driver_state(knobs: dict[str, Any], state: dict[str, Any]) -> Literal["missing", "not-loaded", "ok"]:
    """missing until apt installs it; not loaded until a reboot (or forever with nvsmi_fail)."""
    if not driver_installed(knobs, state):
        return "missing"
    if knobs.get("nvsmi_fail") or (knobs.get("no_driver") and not state.get("driver_loaded")):
        return "not-loaded"
    return "ok"


def docker_present(knobs: dict[str, Any], state: dict[str, Any]) -> bool:
    return not knobs.get("no_docker") or any(p in DOCKER_PACKAGES for p in packages(state))


def toolkit_present(knobs: dict[str, Any], state: dict[str, Any]) -> bool:
    """The toolkit's CLI (nvidia-ctk): absent with no_toolkit, or no_ctk_cli (runtime from an older install)."""
    return not (knobs.get("no_toolkit") or knobs.get("no_ctk_cli")) or TOOLKIT_PACKAGE in packages(state)


def nvidia_runtime(knobs: dict[str, Any], state: dict[str, Any]) -> bool:
    """docker lists the nvidia runtime once nvidia-ctk configured it and docker was restarted.

    no_toolkit: neither the toolkit nor the runtime; no_runtime: the toolkit is installed but docker's
    daemon.json was never configured; no_ctk_cli: the runtime works but there is no nvidia-ctk.
    """
    binaries = not knobs.get("no_toolkit") or TOOLKIT_PACKAGE in packages(state)
    configured = not (knobs.get("no_toolkit") or knobs.get("no_runtime")) or bool(state.get("runtime_active"))
    return docker_present(knobs, state) and binaries and configured


def boot_time(home: Path, state: dict[str, Any]) -> float:
    """The last (simulated) boot; a fresh host booted ten minutes before its host key was made."""
    if isinstance(state.get("boot_time"), (int, float)):
        return float(state["boot_time"])
    key = home / "ssh" / "ssh_host_ed25519_key"
    return (key.stat().st_mtime if key.exists() else time.time()) - 600


def container_gpu_error(knobs: dict[str, Any], state: dict[str, Any], repo: str, env: list[str]) -> str | None:
    """Why `docker run --gpus` fails on this host (F3, driver not loaded, F4), or None."""
    if not nvidia_runtime(knobs, state):
        return F3
    if driver_state(knobs, state) != "ok":
        return DRIVER_NOT_LOADED
    need = IMAGE_CUDA.get(repo)
    if need and "NVIDIA_DISABLE_REQUIRES=true" not in env and cuda_tuple(driver_cuda(knobs)) < need:
        return F4.format(cuda=f"{need[0]}.{need[1]}")
    return None
