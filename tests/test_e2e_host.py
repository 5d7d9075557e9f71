"""End to end host preparation on the mock cloud: bare hosts get (recorded) installs, a reboot, venvs; failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mockcloud.cloud import MockCloud
from mockcloud.mlwheels import pytorch_index_url
from tests.conftest import run_cli
from tests.test_e2e import cloud, env, prom, write_config  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")

BARE = {"no_driver": True, "no_docker": True, "no_toolkit": True}
DOCKER = {"install": {"method": "docker", "image": "vllm/vllm-openai:v0.11.0"}}
QUICK = {"health": {"timeout": "60s", "interval": "0.3s", "completion_check": False}}


def config(c: MockCloud, tmp_path: Path, name: str, host: dict[str, object], **engine: object) -> Path:
    path = write_config(c, tmp_path, None, name=name, **engine)
    data = yaml.safe_load(path.read_text())
    data["host"] = host
    path.write_text(yaml.safe_dump(data))
    return path


def knobs(c: MockCloud, **values: object) -> None:
    for h in c.hosts:
        h.set_knobs(**values)


def installed(c: MockCloud) -> list[str]:
    """What the host's install shims recorded (only the host that got the server has any)."""
    logs = [h.home / "installed.log" for h in c.hosts]
    return [line for log in logs if log.exists() for line in log.read_text().splitlines()]


def step_line(stderr: str, kind: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("[") and f"] {kind}: " in line)


def no_traceback_of_ours(stderr: str) -> None:
    assert not any(line.startswith("Traceback") for line in stderr.splitlines()), stderr


def test_bare_host_is_prepared_rebooted_and_serves(cloud: MockCloud, env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    knobs(cloud, **BARE)
    host = {
        "pytorch": {"enabled": True, "index_url": pytorch_index_url(cloud.root / "wheelhouse")},
        "tensorflow": {"enabled": True},
        "compile_check": True,
    }
    cfg = config(cloud, tmp_path, "bare", host, **DOCKER, **QUICK)
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 0, proc.stderr
    log = installed(cloud)
    expected = [
        "apt-get update",
        "apt-get install nvidia-headless-580-server-open nvidia-utils-580-server",
        "apt-mark hold nvidia-headless-580-server-open nvidia-utils-580-server",
        "apt-get install docker.io",
        "systemctl enable --now docker",
        f"usermod -aG docker {cloud.user}",
        "tee /etc/apt/sources.list.d/nvidia-container-toolkit.list",
        "apt-get install nvidia-container-toolkit",
        "nvidia-ctk runtime configure --runtime=docker",
        "systemctl restart docker",
        "reboot",
    ]
    positions = [log.index(line) for line in expected]
    assert positions == sorted(positions), log
    assert log.count("reboot") == 1 and "apt-get install python3-venv" not in log  # the mock has python3-venv
    prep = step_line(proc.stderr, "prepare-host")
    assert "installed NVIDIA driver 580-server, docker.io, NVIDIA Container Toolkit, docker nvidia runtime" in prep
    assert "rebooted; now driver 580.95.05 (CUDA 13.0), docker 28.5.1 with nvidia runtime" in prep
    ml = step_line(proc.stderr, "ml-stack")
    assert "PyTorch 2.9.1+cu130 installed (cu130 index) sees NVIDIA L40S" in ml
    assert "TensorFlow 2.20.0 installed, 1 GPU(s) visible" in ml
    assert "torch.compile: eager" in ml and "XLA jit_compile: eager" in ml
    home = next(h.home for h in cloud.hosts if (h.home / "installed.log").exists())
    assert (home / "torch-venv" / "pyvenv.cfg").exists() and (home / "tf-venv" / "pyvenv.cfg").exists()
    assert "deployment bare is serving" in proc.stdout

    # Again: everything is detected, nothing is installed or rebooted, the venvs are verified, not redone.
    again = run_cli("deploy", str(cfg), "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert installed(cloud) == log
    steps = {s["kind"]: s for s in json.loads(again.stdout)["steps"]}
    assert steps["prepare-host"]["note"].endswith("docker 28.5.1 with nvidia runtime: nothing to install")
    assert not any("apt-get" in a or "reboot" in a for a in steps["prepare-host"]["actions"])
    assert "PyTorch 2.9.1+cu130 already installed" in steps["ml-stack"]["note"]
    assert not any("pip install" in a for a in steps["ml-stack"]["actions"])
    assert run_cli("teardown", "bare", "--yes", env=env).returncode == 0


def test_driver_that_never_loads_is_f1_exit_6(cloud: MockCloud, env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    knobs(cloud, no_driver=True, nvsmi_fail=True)
    proc = run_cli("deploy", str(config(cloud, tmp_path, "noload", {"reboot_timeout": "60s"})), env=env)
    assert proc.returncode == 6, proc.stderr
    no_traceback_of_ours(proc.stderr)
    assert "even after installing the driver and rebooting" in proc.stderr
    assert "couldn't communicate with the NVIDIA driver" in proc.stderr  # the output itself, as a log tail
    assert "(F1)" in proc.stderr and "Secure Boot" in proc.stderr
    assert "reboot" in installed(cloud)
    assert run_cli("teardown", "noload", "--yes", env=env).returncode == 0


def test_missing_toolkit_with_installs_off_is_f3_exit_7(cloud: MockCloud, env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    knobs(cloud, no_toolkit=True)
    proc = run_cli("deploy", str(config(cloud, tmp_path, "notk", {"install_missing": False}, **DOCKER)), env=env)
    assert proc.returncode == 7, proc.stderr
    no_traceback_of_ours(proc.stderr)
    assert "lacks NVIDIA Container Toolkit, docker nvidia runtime" in proc.stderr
    assert "host.install_missing is false" in proc.stderr and "(F3)" in proc.stderr
    assert installed(cloud) == []
    assert run_cli("teardown", "notk", "--yes", env=env).returncode == 0


def test_old_driver_for_the_image_is_f4_exit_8(cloud: MockCloud, env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    knobs(cloud, driver="550.163.01")
    proc = run_cli("deploy", str(config(cloud, tmp_path, "olddrv", {}, **DOCKER, **QUICK)), env=env)
    assert proc.returncode == 8, proc.stderr
    no_traceback_of_ours(proc.stderr)
    assert "older than the 580 branch" in proc.stderr  # prepare-host warned, and installed nothing
    assert "unsatisfied condition: cuda>=12.8" in proc.stderr and "(F4)" in proc.stderr
    assert installed(cloud) == []
    assert run_cli("teardown", "olddrv", "--yes", env=env).returncode == 0


def test_pytorch_index_newer_than_the_driver_is_f5_exit_7_and_auto_fits(
    cloud: MockCloud,  # noqa: F811
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    knobs(cloud, driver="570.172.08")
    index = pytorch_index_url(cloud.root / "wheelhouse")
    cfg = config(cloud, tmp_path, "f5", {"pytorch": {"enabled": True, "cuda": "cu130", "index_url": index}}, **QUICK)
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 7, proc.stderr
    no_traceback_of_ours(proc.stderr)
    assert "host.pytorch.cuda is cu130 (CUDA 13.0), but the driver supports CUDA 12.8 at most" in proc.stderr
    assert "(F5)" in proc.stderr and "cu130 wheels need a 580+ driver" in proc.stderr
    auto = config(cloud, tmp_path, "f5", {"pytorch": {"enabled": True, "index_url": index}}, **QUICK)
    again = run_cli("deploy", str(auto), env=env)
    assert again.returncode == 0, again.stderr
    assert "PyTorch 2.9.1+cu128 installed (cu128 index) sees NVIDIA L40S" in step_line(again.stderr, "ml-stack")
    assert run_cli("teardown", "f5", "--yes", env=env).returncode == 0


def test_system_python_as_venv_is_f12_exit_7(cloud: MockCloud, env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    index = pytorch_index_url(cloud.root / "wheelhouse")
    cfg = config(cloud, tmp_path, "f12", {"pytorch": {"enabled": True, "venv": "/usr", "index_url": index}})
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 7, proc.stderr
    no_traceback_of_ours(proc.stderr)
    assert "install PyTorch from the cu130 index failed" in proc.stderr
    assert "externally-managed-environment" in proc.stderr and "(F12)" in proc.stderr
    assert "host.pytorch.venv points at a system Python, not a venv" in proc.stderr
    assert run_cli("teardown", "f12", "--yes", env=env).returncode == 0
