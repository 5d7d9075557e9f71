"""Host preparation as data: parse the read-only probes (driver, docker, toolkit) and plan only the missing installs."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from orchestrator.actions import Remote

SMI_PROBE = Remote("nvidia-smi", "is an NVIDIA driver installed and loaded? (driver and CUDA version)", timeout=60)
DOCKER_PROBE = Remote(
    "command -v docker && docker info --format '{{.ServerVersion}} {{json .Runtimes}}'",
    "is docker installed and running, and does it have the nvidia runtime?",
    timeout=60,
)
CTK_PROBE = Remote("nvidia-ctk --version", "is the NVIDIA Container Toolkit installed?", timeout=30)
VENV_PROBE = Remote("python3 -c 'import ensurepip, venv'", "can python3 make venvs (python3-venv)?", timeout=30)
# vLLM from pip compiles kernels at engine start (Triton JIT): it needs a C compiler and Python.h (F17, F18).
BUILD_PACKAGES = ("build-essential", "python3-dev")
BUILD_PROBE = Remote(
    "dpkg-query -W -f='${Package} ${db:Status-Status}\\n' " + " ".join(BUILD_PACKAGES),
    "are a C compiler and the Python headers installed (build-essential, python3-dev)?",
    timeout=30,
)
BOOT_PROBE = "uptime -s"
GPU_SMOKE_IMAGE = "ubuntu:24.04"

NVIDIA_KEY_URL = "https://nvidia.github.io/libnvidia-container/gpgkey"
NVIDIA_LIST_URL = "https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list"
NVIDIA_KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
NVIDIA_LIST = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"

DriverState = Literal["ok", "missing", "not-loaded", "mismatch", "error"]
DockerState = Literal["ok", "missing", "snap", "no-daemon", "no-access", "error"]

_DRIVER_RE = re.compile(r"Driver Version\s*:\s*([0-9][0-9.]*)", re.IGNORECASE)
_CUDA_RE = re.compile(r"CUDA Version\s*:\s*([0-9]+\.[0-9]+)", re.IGNORECASE)
_NOT_FOUND = re.compile(r"command not found|: not found|No such file or directory", re.IGNORECASE)


@dataclass(frozen=True)
class Driver:
    """What `nvidia-smi` (the plain table) says about the driver."""

    state: DriverState
    version: str = ""
    cuda: str = ""
    rc: int = 0
    output: str = ""

    @property
    def branch(self) -> int | None:
        head = self.version.split(".")[0]
        return int(head) if head.isdigit() else None


@dataclass(frozen=True)
class Docker:
    """What `command -v docker && docker info --format '{{.ServerVersion}} {{json .Runtimes}}'` says."""

    state: DockerState
    version: str = ""
    runtimes: tuple[str, ...] = ()
    path: str = ""
    output: str = ""

    @property
    def nvidia(self) -> bool:
        return "nvidia" in self.runtimes


@dataclass(frozen=True)
class Toolkit:
    """The NVIDIA Container Toolkit's CLI (`nvidia-ctk`); whether docker has the nvidia runtime is Docker.nvidia."""

    present: bool
    version: str = ""


@dataclass(frozen=True)
class HostFacts:
    """Everything detection learnt; None for what was not probed (docker when the engine needs none)."""

    driver: Driver
    docker: Docker | None = None
    toolkit: Toolkit | None = None
    python_venv: bool | None = None
    build_missing: tuple[str, ...] | None = None  # of BUILD_PACKAGES, when probed


@dataclass(frozen=True)
class Needs:
    """What this deployment needs on the host."""

    docker: bool
    python_venv: bool
    driver_branch: str
    user: str
    build_tools: bool = False  # vLLM from pip: a C compiler and Python headers (Triton JIT at engine start)


@dataclass(frozen=True)
class Install:
    """One missing piece and the idempotent commands that install it."""

    key: str
    title: str
    commands: tuple[Remote, ...]
    reconnect: bool = False  # a new SSH session is needed afterwards (new group membership)


# ---------------------------------------------------------------- parsing the probes


def parse_nvidia_smi(rc: int, output: str) -> Driver:
    """Classify a plain `nvidia-smi` run (stdout and stderr together) by exit code and text (engines.md §4.4, §6)."""
    text = output.strip()
    low = text.lower()
    if "driver/library version mismatch" in low:
        return Driver("mismatch", rc=rc, output=text)
    if rc == 127 or (rc != 0 and "nvidia-smi" in low and _NOT_FOUND.search(text)):
        return Driver("missing", rc=rc, output=text)
    if rc == 9 or "communicate with the nvidia driver" in low or "driver is not loaded" in low:
        return Driver("not-loaded", rc=rc, output=text)
    driver, cuda = _DRIVER_RE.search(text), _CUDA_RE.search(text)
    if rc != 0 or driver is None:
        return Driver("error", rc=rc, output=text)
    return Driver("ok", driver.group(1), cuda.group(1) if cuda else "", rc, text)


def parse_docker(rc: int, output: str) -> Docker:
    """Classify the docker probe: missing, a snap (F3 cause), daemon down, no permission, or its runtimes."""
    text = output.strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    path = lines[0] if lines and lines[0].startswith("/") else ""
    low = text.lower()
    if not path or rc == 127 or (rc != 0 and "docker: command not found" in low):
        return Docker("missing", output=text)
    if path.startswith("/snap/"):
        return Docker("snap", path=path, output=text)
    if "permission denied" in low and "docker daemon socket" in low:
        return Docker("no-access", path=path, output=text)
    if "cannot connect to the docker daemon" in low or "is the docker daemon running" in low:
        return Docker("no-daemon", path=path, output=text)
    version, _, runtimes = lines[-1].partition(" ")
    try:
        names = json.loads(runtimes)
    except ValueError:
        names = None
    if rc != 0 or not isinstance(names, dict) or not re.match(r"[0-9]", version):
        return Docker("error", path=path, output=text)
    return Docker("ok", version, tuple(sorted(names)), path, text)


def docker_as_root(user: str) -> Remote:
    """When the login user may not use docker yet (not in the docker group), ask docker through sudo."""
    return Remote(
        sudo(["docker", "info", "--format", "{{.ServerVersion}} {{json .Runtimes}}"], user),
        "does docker have the nvidia runtime? (asked through sudo)",
        timeout=60,
    )


def with_root_view(user_view: Docker, rc: int, output: str) -> Docker:
    """A 'no-access' probe completed with what docker told root: keep the state, learn version and runtimes."""
    seen = parse_docker(rc, f"{user_view.path}\n{output}")
    if seen.state != "ok":
        return user_view
    return Docker("no-access", seen.version, seen.runtimes, user_view.path, user_view.output)


def parse_ctk(rc: int, output: str) -> Toolkit:
    """`nvidia-ctk --version` prints 'NVIDIA Container Toolkit CLI version 1.17.8' (then a commit line)."""
    found = re.search(r"version\s+v?([0-9][0-9.]*)", output)
    if rc != 0 or found is None:
        return Toolkit(False)
    return Toolkit(True, found.group(1))


def parse_build_packages(rc: int, output: str) -> tuple[str, ...]:
    """Which of BUILD_PACKAGES are not installed, from `dpkg-query -W -f='${Package} ${db:Status-Status}\\n'`.

    dpkg-query prints "NAME installed" per known package (other states: not-installed, config-files,
    half-installed, ...) and "dpkg-query: no packages found matching NAME" (exit 1) for one it never saw.
    """
    installed = set()
    for line in output.splitlines():
        name, _, status = line.strip().partition(" ")
        if status.strip() == "installed":
            installed.add(name.split(":")[0])
    return tuple(p for p in BUILD_PACKAGES if p not in installed)


def parse_boot_time(text: str) -> datetime | None:
    """`uptime -s` prints the boot time as 'YYYY-MM-DD HH:MM:SS'."""
    try:
        return datetime.strptime(text.strip().splitlines()[-1].strip(), "%Y-%m-%d %H:%M:%S")
    except (ValueError, IndexError):
        return None


def rebooted(before: str | None, after: str) -> bool:
    """True when the boot time moved on (uptime -s jitters by a second, a reboot moves it by far more)."""
    old, new = parse_boot_time(before or ""), parse_boot_time(after)
    if old is None or new is None:
        return new is not None and before is None
    return (new - old).total_seconds() > 5


# ---------------------------------------------------------------- commands


def sudo(argv: list[str], user: str) -> str:
    """A quoted command line, through `sudo -n` (never prompts) unless the login user is root."""
    line = shlex.join(argv)
    return line if user == "root" else f"sudo -n {line}"


def apt(args: list[str], user: str) -> str:
    # DPkg::Lock::Timeout: a fresh cloud VM's unattended-upgrades often holds the dpkg lock for a while.
    return sudo(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-o", "DPkg::Lock::Timeout=600", *args], user)


def driver_packages(branch: str) -> list[str]:
    """engines.md §4.1: open kernel modules (recommended for Ada) and nvidia-smi for a headless server."""
    return [f"nvidia-headless-{branch}-server-open", f"nvidia-utils-{branch}-server"]


def _nvidia_repo_script() -> str:
    return (
        'set -e; k=$(mktemp); l=$(mktemp); trap "rm -f $k $l" EXIT; '
        f'curl -fsSL -o "$k" {NVIDIA_KEY_URL}; curl -fsSL -o "$l" {NVIDIA_LIST_URL}; '
        f'gpg --batch --yes --dearmor -o {NVIDIA_KEYRING} "$k"; '
        f'sed "s#deb https://#deb [signed-by={NVIDIA_KEYRING}] https://#g" "$l" | tee {NVIDIA_LIST} >/dev/null'
    )


def gpu_smoke_test() -> Remote:
    """engines.md §6: a container that sees the GPU proves docker + toolkit + driver together (F3/F4)."""
    return Remote(
        f"docker run --rm --gpus all {GPU_SMOKE_IMAGE} nvidia-smi -L",
        "can a container use the GPU? (docker + NVIDIA Container Toolkit)",
        timeout=600,
    )


def reboot_command(user: str) -> Remote:
    return Remote(sudo(["reboot"], user), "reboot so the new driver's kernel module loads", timeout=60)


# ---------------------------------------------------------------- the plan


def missing(facts: HostFacts | None, needs: Needs) -> list[str]:
    """Keys of what is missing; with no facts (dry-run) everything a bare Ubuntu 24.04 host lacks."""
    keys: list[str] = []
    if facts is None or facts.driver.state == "missing":
        keys.append("driver")
    if needs.python_venv and (facts is None or facts.python_venv is False):
        keys.append("python3-venv")
    if needs.build_tools and (facts is None or facts.build_missing is None or facts.build_missing):
        keys.append("build-tools")
    if needs.docker:
        docker = facts.docker if facts else None
        state = docker.state if docker else "missing"
        keys += {"missing": ["docker"], "no-daemon": ["docker-start"], "no-access": ["docker-group"]}.get(state, [])
        # Two facts: the toolkit's CLI (nvidia-ctk) and docker's nvidia runtime; each is installed on its own.
        if facts is None or facts.toolkit is None or not facts.toolkit.present:
            keys.append("toolkit")
        if docker is None or not docker.nvidia:
            keys.append("runtime")
    return keys


def install_plan(facts: HostFacts | None, needs: Needs) -> list[Install]:
    """The installs for what is missing, in a working order; empty when the host has everything."""
    keys = missing(facts, needs)
    user, branch = needs.user, needs.driver_branch
    plan: list[Install] = []
    if {"driver", "python3-venv", "build-tools", "docker"} & set(keys):
        plan.append(Install("apt-update", "package lists", (Remote(apt(["update"], user), "refresh package lists"),)))
    if "driver" in keys:
        pkgs = driver_packages(branch)
        plan.append(
            Install(
                "driver",
                f"NVIDIA driver {branch}-server",
                (
                    Remote(apt(["install", "-y", *pkgs], user), f"install the NVIDIA {branch} driver", timeout=1800),
                    # engines.md §4.1/F2: unattended upgrades of a loaded driver cause a version mismatch.
                    Remote(sudo(["apt-mark", "hold", *pkgs], user), "hold the driver packages"),
                ),
            )
        )
    if "python3-venv" in keys:
        cmd = Remote(apt(["install", "-y", "python3-venv"], user), "install python3-venv", timeout=600)
        plan.append(Install("python3-venv", "python3-venv", (cmd,)))
    if "build-tools" in keys:
        pkgs = list(facts.build_missing or BUILD_PACKAGES) if facts else list(BUILD_PACKAGES)
        cmd = Remote(
            apt(["install", "-y", *pkgs], user), "install a C compiler and Python headers (vLLM's JIT)", timeout=1200
        )
        plan.append(Install("build-tools", f"C compiler and Python headers ({', '.join(pkgs)})", (cmd,)))
    group = Remote(sudo(["usermod", "-aG", "docker", user], user), f"let {user} use docker without sudo")
    if "docker" in keys:
        cmds = [
            Remote(apt(["install", "-y", "docker.io"], user), "install docker (Ubuntu's docker.io, not the snap)"),
            Remote(sudo(["systemctl", "enable", "--now", "docker"], user), "start docker now and at boot"),
        ]
        plan.append(Install("docker", "docker.io", (*cmds, *([group] if user != "root" else [])), user != "root"))
    if "docker-start" in keys:
        start = Remote(sudo(["systemctl", "enable", "--now", "docker"], user), "start docker now and at boot")
        plan.append(Install("docker-start", "docker daemon start", (start,)))
    if "docker-group" in keys:
        plan.append(Install("docker-group", f"docker group for {user}", (group,), reconnect=True))
    if "toolkit" in keys:
        cmds = [
            Remote(sudo(["sh", "-c", _nvidia_repo_script()], user), "add NVIDIA's container toolkit apt repository"),
            Remote(apt(["update"], user), "refresh package lists"),
            Remote(apt(["install", "-y", "nvidia-container-toolkit"], user), "install the NVIDIA Container Toolkit"),
        ]
        plan.append(Install("toolkit", "NVIDIA Container Toolkit", tuple(cmds)))
    if "runtime" in keys:
        cmds = [
            Remote(
                sudo(["nvidia-ctk", "runtime", "configure", "--runtime=docker"], user),
                "register the nvidia runtime in /etc/docker/daemon.json",
            ),
            Remote(sudo(["systemctl", "restart", "docker"], user), "restart docker so it loads the nvidia runtime"),
        ]
        plan.append(Install("runtime", "docker nvidia runtime", tuple(cmds)))
    return plan


def summary(facts: HostFacts) -> str:
    """One line about what the host has, e.g. 'driver 580.95.05 (CUDA 13.0), docker 28.5.1 with nvidia runtime'."""
    d = facts.driver
    parts = [f"driver {d.version}" + (f" (CUDA {d.cuda})" if d.cuda else "") if d.state == "ok" else "no driver"]
    if facts.docker is not None:
        if facts.docker.state == "ok":
            runtime = "with nvidia runtime" if facts.docker.nvidia else "without the nvidia runtime"
            parts.append(f"docker {facts.docker.version} {runtime}")
        else:
            parts.append(f"docker {facts.docker.state}")
    if facts.toolkit is not None and not facts.toolkit.present:
        parts.append("no NVIDIA Container Toolkit CLI (nvidia-ctk)")
    if facts.build_missing:
        parts.append(f"no {', '.join(facts.build_missing)}")
    return ", ".join(parts)


def manual_commands(plan: list[Install]) -> str:
    """The install commands, for a hint when host.install_missing is false."""
    return "; ".join(cmd.command for item in plan for cmd in item.commands)
