"""The mock hosts' system tools: installs need root, are recorded not made, and change what later probes see."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockcloud.host_errors import MockHostError
from mockcloud.host_runtime import (
    LOGIN_USER_WHEN_ROOT,
    PACKAGE_DIR,
    SHIMS,
    HostRuntime,
    check_shims,
    ensure_login_user,
    host_runtime,
)
from mockcloud.hostbase import DEFAULT_KNOBS, poweroff_host, write_knobs
from mockcloud.hosts import new_root
from mockcloud.hoststate import F3
from orchestrator.hostprep import Needs, install_plan, sudo

APT = "env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600"
GPU_RUN = "docker run --rm --gpus all ubuntu:24.04 nvidia-smi -L"


AS_ROOT = os.geteuid() == 0


@pytest.fixture
def home() -> Iterator[Path]:
    """A mock host's dir, owned by its (non-root) login user: sudo must matter, as on a real host."""
    root = new_root("orch-hostsys-")
    home = root / "h1"
    (home / "ssh").mkdir(parents=True)
    (home / "ssh" / "ssh_host_ed25519_key").write_text("")
    (home / "containers").mkdir()
    write_knobs(home / "knobs.json", dict(DEFAULT_KNOBS))
    if AS_ROOT:
        user = pwd.getpwnam(ensure_login_user())
        for path in (home, home / "ssh", home / "containers"):
            os.chown(path, user.pw_uid, user.pw_gid)
    try:
        yield home
    finally:
        poweroff_host(home)
        shutil.rmtree(root, ignore_errors=True)


def knobs(home: Path, **values: object) -> None:
    write_knobs(home / "knobs.json", dict(DEFAULT_KNOBS) | values)


def runtime(home: Path) -> HostRuntime:
    """What MockHosts gives the host's commands (a host-readable copy of mockcloud when the checkout is private)."""
    return host_runtime(home.parent, other_user=AS_ROOT)


def sh(home: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Run a shell command as the mock host would (its user, PATH and MOCKHOST_HOME; never this process's env)."""
    user = LOGIN_USER_WHEN_ROOT if AS_ROOT else None
    return subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, env=runtime(home).env(home), timeout=60, user=user,
        cwd=home,
    )


def log(home: Path) -> list[str]:
    path = home / "installed.log"
    return path.read_text().splitlines() if path.exists() else []


def test_installs_need_root_and_are_recorded(home: Path) -> None:
    knobs(home, no_docker=True)
    assert sh(home, "docker ps").returncode == 127
    denied = sh(home, f"{APT} install -y docker.io")
    assert denied.returncode == 100 and "are you root?" in denied.stderr and log(home) == []
    ok = sh(home, sudo(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "docker.io"], "u"))
    assert ok.returncode == 0, ok.stderr
    assert log(home) == ["apt-get install docker.io"]
    assert sh(home, "docker ps -q").returncode == 0
    typo = sh(home, f"sudo -n {APT} install -y dockr.io")
    assert typo.returncode == 100 and "Unable to locate package dockr.io" in typo.stderr
    assert sh(home, "sudo -n usermod -aG docker gpuops").returncode == 0
    assert json.loads((home / "hoststate.json").read_text())["groups"] == {"gpuops": ["docker"]}


def test_toolkit_comes_from_nvidias_repo_after_an_update(home: Path) -> None:
    knobs(home, no_toolkit=True)
    assert sh(home, "nvidia-ctk --version").returncode == 127
    runtimes = json.loads(sh(home, "docker info --format '{{json .Runtimes}}'").stdout)
    assert "nvidia" not in runtimes
    gpu = sh(home, GPU_RUN)
    assert gpu.returncode == 125 and F3 in gpu.stderr  # the exact F3 string from engines.md §6
    early = sh(home, f"sudo -n {APT} install -y nvidia-container-toolkit")
    assert early.returncode == 100 and "Unable to locate package nvidia-container-toolkit" in early.stderr
    needs = Needs(docker=True, python_venv=False, driver_branch="580", user="gpuops")
    [toolkit] = [i for i in install_plan(None, needs) if i.key == "toolkit"]
    repo, update, install = (cmd.command for cmd in toolkit.commands)
    assert sh(home, repo).returncode == 0
    assert sh(home, install).returncode == 100, "a new apt source needs apt-get update first"
    assert sh(home, update).returncode == 0 and sh(home, install).returncode == 0
    assert sh(home, "nvidia-ctk --version").stdout.startswith("NVIDIA Container Toolkit CLI version 1.17.8")
    assert sh(home, "nvidia-ctk runtime configure --runtime=docker").returncode == 1  # not root
    assert sh(home, "sudo -n nvidia-ctk runtime configure --runtime=docker").returncode == 0
    assert F3 in sh(home, GPU_RUN).stderr, "docker loads the new runtime only when restarted"
    assert sh(home, "sudo -n systemctl restart docker").returncode == 0
    ok = sh(home, GPU_RUN)
    assert ok.returncode == 0 and ok.stdout.startswith("GPU 0: NVIDIA L40S"), ok.stderr
    assert "gpg --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg" in log(home)
    assert "tee /etc/apt/sources.list.d/nvidia-container-toolkit.list" in log(home)


def test_old_driver_fails_cuda_images_with_f4(home: Path) -> None:
    knobs(home, driver="550.163.01")
    assert "CUDA Version: 12.4" in sh(home, "nvidia-smi").stdout
    run = sh(home, "docker run -d --gpus all vllm/vllm-openai:v0.11.0 --model m")
    assert run.returncode == 125
    assert "unsatisfied condition: cuda>=12.8, please update your driver to a newer version" in run.stderr
    knobs(home, driver_cuda="12.2")
    assert "CUDA Version: 12.2" in sh(home, "nvidia-smi").stdout


def test_new_driver_loads_after_a_reboot(home: Path) -> None:
    knobs(home, no_driver=True)
    missing = sh(home, "nvidia-smi")
    assert missing.returncode == 127 and "nvidia-smi: command not found" in missing.stderr
    assert sh(home, f"sudo -n {APT} install -y nvidia-headless-580-server-open nvidia-utils-580-server").returncode == 0
    unloaded = sh(home, "nvidia-smi")
    assert unloaded.returncode == 9 and "couldn't communicate with the NVIDIA driver" in unloaded.stdout
    booted = sh(home, "uptime -s").stdout
    refused = sh(home, "reboot")
    assert refused.returncode == 1 and "Interactive authentication required" in refused.stderr
    assert sh(home, "sudo -n reboot").returncode == 0
    deadline = time.monotonic() + 10
    while sh(home, "nvidia-smi").returncode != 0:
        assert time.monotonic() < deadline, "the simulated reboot never loaded the driver"
        time.sleep(0.2)
    assert sh(home, "uptime -s").stdout != booted
    assert log(home)[-1] == "reboot"


# ---------------------------------------------------------------- no fall-through to this machine's real tools


def test_every_shim_resolves_for_the_host_user(home: Path) -> None:
    """`command -v` on the host finds each shim, never a real tool (this machine may have /usr/local/bin/docker)."""
    shims = runtime(home).hostbin
    names = " ".join(SHIMS)
    found = sh(home, f'for n in {names}; do command -v "$n" || echo "$n missing"; done').stdout.splitlines()
    assert found == [str(shims / n) for n in SHIMS]
    assert {"docker", "nvidia-smi", "systemctl", "apt-get", "sudo"} <= set(SHIMS)


def test_private_checkout_runs_from_a_host_readable_copy(home: Path, tmp_path: Path) -> None:
    """A clone in a 0700 dir: the host user's commands use a copy under the hosts' root, and still the shims."""
    private = tmp_path / "clone"
    private.mkdir(mode=0o700)
    shutil.copytree(PACKAGE_DIR, private / "mockcloud", ignore=shutil.ignore_patterns("__pycache__"))
    rt = host_runtime(home.parent, other_user=True, package_dir=private / "mockcloud")
    assert rt.hostbin == home.parent / "hostlib" / "mockcloud" / "hostbin" and not rt.path.startswith(str(private))
    check_shims(rt, LOGIN_USER_WHEN_ROOT if AS_ROOT else None)
    knobs(home, no_docker=True)
    user = LOGIN_USER_WHEN_ROOT if AS_ROOT else None
    gone = subprocess.run(["sh", "-c", "docker ps"], capture_output=True, text=True, env=rt.env(home), user=user)
    assert gone.returncode == 127 and "docker: command not found" in gone.stderr  # the shim, not a real docker


def test_a_fall_through_to_a_real_tool_is_refused(tmp_path: Path) -> None:
    """A shim dir the host cannot use (here: one that lacks docker and systemctl) fails loudly at setup."""
    partial = tmp_path / "hostbin"
    partial.mkdir()
    for name in SHIMS:
        if name not in ("docker", "systemctl"):
            shutil.copy2(PACKAGE_DIR / "hostbin" / name, partial / name)
    with pytest.raises(MockHostError, match=r"docker -> .*systemctl -> ") as err:
        check_shims(HostRuntime(sys.executable, str(PACKAGE_DIR.parent), partial), None)
    assert "apt-get ->" not in str(err.value)


@pytest.mark.skipif(not AS_ROOT, reason="another login user exists only when the tests run as root")
def test_a_private_shim_dir_is_refused_for_the_host_user(tmp_path: Path) -> None:
    """The bug this guards: gpuops cannot enter a 0700 clone, so `docker` was the real /usr/local/bin/docker."""
    ensure_login_user()
    private = tmp_path / "clone"
    private.mkdir(mode=0o700)
    shutil.copytree(PACKAGE_DIR / "hostbin", private / "hostbin")
    with pytest.raises(MockHostError, match=r"for user gpuops: .*docker -> "):
        check_shims(HostRuntime("/usr/bin/python3", str(private), private / "hostbin"), LOGIN_USER_WHEN_ROOT)
