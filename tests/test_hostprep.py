"""Host preparation: probe parsers on real-format output, install-plan selection, CUDA → wheel index, dry-run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mockcloud.cloud import MockCloud
from orchestrator import hostprep as hp
from orchestrator import mlstack as ml
from orchestrator.actions import Action, Connect, Pause, Remote, Result
from orchestrator.config import DeploymentConfig
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import GpuVerificationError, HostPrepError, OrchestratorError
from orchestrator.state import Deployment
from orchestrator.steps.prepare import host_needs, prepare_host
from tests.conftest import run_cli
from tests.test_e2e import cloud, env, write_config  # noqa: F401 - shared fixtures (mock cloud, env per test)

needs_sshd = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")

SMI_580 = """\
Fri Nov 28 09:12:44 2025
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 580.95.05              Driver Version: 580.95.05      CUDA Version: 13.0     |
+-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |
|=========================================+========================+======================|
|   0  NVIDIA L40S                    On  |   00000000:01:00.0 Off |                    0 |
| N/A   31C    P8             33W /  350W |       0MiB /  46068MiB |      0%      Default |
+-----------------------------------------+------------------------+----------------------+
"""
SMI_550 = "| NVIDIA-SMI 550.163.01             Driver Version: 550.163.01     CUDA Version: 12.4     |\n"
F1 = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n"
)
RUNTIMES = (
    '{"io.containerd.runc.v2":{"path":"runc"},"nvidia":{"path":"nvidia-container-runtime"},"runc":{"path":"runc"}}'
)
CTK = "NVIDIA Container Toolkit CLI version 1.17.8\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d\n"


# ---------------------------------------------------------------- parsers


def test_nvidia_smi_table_gives_driver_and_cuda() -> None:
    d = hp.parse_nvidia_smi(0, SMI_580)
    assert (d.state, d.version, d.cuda, d.branch) == ("ok", "580.95.05", "13.0", 580)
    assert hp.parse_nvidia_smi(0, SMI_550).branch == 550
    version_format = "NVIDIA-SMI version  : 580.95.05\nDRIVER version      : 580.95.05\nCUDA Version        : 13.0\n"
    assert hp.parse_nvidia_smi(0, version_format).cuda == "13.0"


@pytest.mark.parametrize(
    "rc, output, state",
    [
        (127, "bash: line 1: nvidia-smi: command not found\n", "missing"),
        (127, "sh: 1: nvidia-smi: not found\n", "missing"),
        (9, F1, "not-loaded"),
        (18, "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.95\n", "mismatch"),
        (255, "Unable to determine the device handle for GPU0000:01:00.0: Unknown Error\n", "error"),
        (0, "something else entirely\n", "error"),
    ],
)
def test_nvidia_smi_failures_are_classified(rc: int, output: str, state: str) -> None:
    assert hp.parse_nvidia_smi(rc, output).state == state


def test_docker_probe() -> None:
    ok = hp.parse_docker(0, f"/usr/bin/docker\n28.5.1 {RUNTIMES}\n")
    assert (ok.state, ok.version, ok.nvidia) == ("ok", "28.5.1", True)
    plain = hp.parse_docker(0, '/usr/bin/docker\n27.5.1 {"io.containerd.runc.v2":{"path":"runc"},"runc":{}}\n')
    assert plain.state == "ok" and not plain.nvidia
    assert hp.parse_docker(1, "").state == "missing"  # `command -v docker` found nothing
    assert hp.parse_docker(127, "/x/docker\nbash: line 1: docker: command not found\n").state == "missing"
    assert hp.parse_docker(0, f"/snap/bin/docker\n28.1.1 {RUNTIMES}\n").state == "snap"
    down = "/usr/bin/docker\nCannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon"
    assert hp.parse_docker(1, down).state == "no-daemon"
    denied = (
        "/usr/bin/docker\npermission denied while trying to connect to the Docker daemon socket at "
        "unix:///var/run/docker.sock: Get ...: dial unix /var/run/docker.sock: connect: permission denied"
    )
    user_view = hp.parse_docker(1, denied)
    assert user_view.state == "no-access"
    root_view = hp.with_root_view(user_view, 0, f"28.5.1 {RUNTIMES}")
    assert (root_view.state, root_view.nvidia) == ("no-access", True)


def test_toolkit_probe_and_boot_time() -> None:
    assert hp.parse_ctk(0, CTK) == hp.Toolkit(True, "1.17.8")
    assert hp.parse_ctk(127, "bash: line 1: nvidia-ctk: command not found") == hp.Toolkit(False)
    assert not hp.rebooted("2025-11-28 09:00:00\n", "2025-11-28 09:00:01\n")  # uptime -s jitter
    assert hp.rebooted("2025-11-28 09:00:00\n", "2025-11-28 09:03:10\n")
    assert hp.rebooted(None, "2025-11-28 09:03:10")
    assert not hp.rebooted("2025-11-28 09:00:00", "garbage")


# ---------------------------------------------------------------- plan selection

EVERYTHING = hp.HostFacts(
    hp.parse_nvidia_smi(0, SMI_580), hp.parse_docker(0, f"/usr/bin/docker\n28.5.1 {RUNTIMES}"), hp.Toolkit(True), True
)
DOCKER_ONLY = hp.HostFacts(
    hp.parse_nvidia_smi(0, SMI_580), hp.parse_docker(0, '/usr/bin/docker\n28.5.1 {"runc":{}}'), hp.Toolkit(False), True
)


def commands(plan: list[hp.Install]) -> list[str]:
    return [cmd.command for item in plan for cmd in item.commands]


def test_a_host_with_everything_gets_no_installs() -> None:
    needs = hp.Needs(docker=True, python_venv=True, driver_branch="580", user="ubuntu")
    assert hp.install_plan(EVERYTHING, needs) == []
    assert hp.summary(EVERYTHING) == "driver 580.95.05 (CUDA 13.0), docker 28.5.1 with nvidia runtime"


def test_missing_toolkit_gets_repo_toolkit_runtime_and_restart() -> None:
    needs = hp.Needs(docker=True, python_venv=False, driver_branch="580", user="ubuntu")
    plan = hp.install_plan(DOCKER_ONLY, needs)
    assert [i.key for i in plan] == ["toolkit", "runtime"]
    cmds = commands(plan)
    assert "nvidia.github.io/libnvidia-container/gpgkey" in cmds[0] and cmds[0].startswith("sudo -n sh -c ")
    assert cmds[1:] == [
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update",
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "
        "nvidia-container-toolkit",
        "sudo -n nvidia-ctk runtime configure --runtime=docker",
        "sudo -n systemctl restart docker",
    ]


def test_missing_docker_as_root_needs_no_sudo_nor_group() -> None:
    facts = hp.HostFacts(hp.parse_nvidia_smi(0, SMI_580), hp.parse_docker(1, ""), hp.Toolkit(False), None)
    plan = hp.install_plan(facts, hp.Needs(docker=True, python_venv=False, driver_branch="580", user="root"))
    assert [i.key for i in plan] == ["apt-update", "docker", "toolkit", "runtime"]
    cmds = commands(plan)
    assert not any(c.startswith("sudo") or "usermod" in c for c in cmds)
    assert "env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y docker.io" in cmds
    assert not any("snap" in c for c in cmds)
    user_plan = hp.install_plan(facts, hp.Needs(docker=True, python_venv=False, driver_branch="580", user="ubuntu"))
    docker = next(i for i in user_plan if i.key == "docker")
    assert docker.reconnect and docker.commands[-1].command == "sudo -n usermod -aG docker ubuntu"


def test_pip_engine_on_a_bare_host_gets_driver_and_venv_but_no_docker() -> None:
    bare = hp.HostFacts(hp.parse_nvidia_smi(127, "nvidia-smi: command not found"), None, None, False)
    plan = hp.install_plan(bare, hp.Needs(docker=False, python_venv=True, driver_branch="570", user="ubuntu"))
    assert [i.key for i in plan] == ["apt-update", "driver", "python3-venv"]
    cmds = commands(plan)
    assert any("install -y nvidia-headless-570-server-open nvidia-utils-570-server" in c for c in cmds)
    assert "sudo -n apt-mark hold nvidia-headless-570-server-open nvidia-utils-570-server" in cmds
    assert not any("docker" in c for c in cmds)


def test_dry_run_plan_is_a_bare_host() -> None:
    plan = hp.install_plan(None, hp.Needs(docker=True, python_venv=True, driver_branch="580", user="ubuntu"))
    assert [i.key for i in plan] == ["apt-update", "driver", "python3-venv", "docker", "toolkit", "runtime"]


# ---------------------------------------------------------------- CUDA → PyTorch index


@pytest.mark.parametrize(
    "cuda, wanted, index",
    [("13.0", "auto", "cu130"), ("12.9", "auto", "cu128"), ("12.8", "auto", "cu128"), ("12.6", "auto", "cu126")]
    + [("13.0", "cu126", "cu126"), ("12.8", "cu128", "cu128")],
)
def test_index_for_driver_cuda(cuda: str, wanted: str, index: str) -> None:
    assert ml.pick_index(cuda, wanted) == index


def test_index_newer_than_the_driver_is_refused() -> None:
    with pytest.raises(ml.IndexChoiceError, match="580"):
        ml.pick_index("12.8", "cu130")
    with pytest.raises(ml.IndexChoiceError, match="older than any"):
        ml.pick_index("12.4", "auto")
    with pytest.raises(ml.IndexChoiceError):
        ml.pick_index("", "auto")


def test_torch_probe_and_timing_parsing() -> None:
    probe = ml.last_json('noise\n{"version": "2.9.1+cu128", "cuda": "12.8"}\n')
    assert ml.torch_matches(probe, None, "cu128") and ml.torch_matches(probe, "2.9.1", "cu128")
    assert not ml.torch_matches(probe, "2.8.0", "cu128") and not ml.torch_matches(probe, None, "cu130")
    assert not ml.torch_matches(None, None, "cu128")
    timing = ml.parse_timing('{"eager_ms": 12.0, "compiled_ms": 4.0}')
    assert timing is not None and timing.describe("torch.compile") == (
        "torch.compile: eager 12.00 ms, compiled 4.00 ms (3.0x)"
    )
    assert ml.parse_timing("Traceback ...") is None
    cmd = ml.torch_install("torch-venv", "2.9.1", "https://download.pytorch.org/whl", "cu128")
    assert cmd.command == (
        '"$HOME"/torch-venv/bin/python3 -m pip install torch==2.9.1 --index-url https://download.pytorch.org/whl/cu128'
    )
    tf = ml.tf_install("/opt/tf env", "2.20.0")
    assert tf.command == "'/opt/tf env'/bin/python3 -m pip install 'tensorflow[and-cuda]==2.20.0'"


# ---------------------------------------------------------------- the step, fed scripted probe results


def context(
    engine: dict[str, Any] | None = None, host: dict[str, Any] | None = None, user: str = "ubuntu"
) -> StepContext:
    cfg = DeploymentConfig.model_validate(
        {
            "name": "prep",
            "ssh": {"user": user, "private_key": "/keys/id"},
            "engine": engine or {"kind": "vllm", "model": "m", "install": {"method": "docker"}},
            "host": host or {},
        }
    )
    return StepContext(cfg=cfg, dep=Deployment(name="prep", config_path="/x.yaml"), store=None)


def drive(gen: StepGen, respond: Callable[[Action], Result]) -> tuple[list[Action], str | None]:
    actions: list[Action] = []
    try:
        action = next(gen)
        while True:
            actions.append(action)
            try:
                result = respond(action)
            except OrchestratorError as exc:
                action = gen.throw(exc)
                continue
            action = gen.send(result)
    except StopIteration as stop:
        return actions, stop.value


def host(
    smi: Result, docker: Result, ctk: Result, after: dict[str, Result] | None = None
) -> Callable[[Action], Result]:
    """A scripted host: probe answers by command; installs succeed; `after` answers once installs ran."""
    installed: list[str] = []

    def respond(action: Action) -> Result:
        if not isinstance(action, Remote):
            return Result()
        answers = {"nvidia-smi": smi, hp.DOCKER_PROBE.command: docker, hp.CTK_PROBE.command: ctk}
        if installed and after:
            answers.update(after)
        if action.command in answers:
            return answers[action.command]
        if action.command == hp.VENV_PROBE.command or action.command.startswith("docker run"):
            return Result()
        installed.append(action.command)
        return Result()

    return respond


OK_SMI = Result(stdout=SMI_580)
OK_DOCKER = Result(stdout=f"/usr/bin/docker\n28.5.1 {RUNTIMES}\n")
PLAIN_DOCKER = Result(stdout='/usr/bin/docker\n28.5.1 {"runc":{"path":"runc"}}\n')
OK_CTK = Result(stdout=CTK)
BUILD_OK = Result(stdout="build-essential installed\npython3-dev installed\n")
BUILD_NONE = Result(
    rc=1,
    stderr="dpkg-query: no packages found matching build-essential\n"
    "dpkg-query: no packages found matching python3-dev\n",
)
NO_CTK = Result(rc=127, stderr="bash: line 1: nvidia-ctk: command not found\n")


def test_step_on_a_complete_host_installs_nothing() -> None:
    actions, note = drive(prepare_host(context()), host(OK_SMI, OK_DOCKER, OK_CTK))
    assert note == "driver 580.95.05 (CUDA 13.0), docker 28.5.1 with nvidia runtime: nothing to install"
    commands = [a.command for a in actions if isinstance(a, Remote)]
    assert commands == [
        "nvidia-smi",
        hp.DOCKER_PROBE.command,
        "nvidia-ctk --version",
        "docker run --rm --gpus all ubuntu:24.04 nvidia-smi -L",
    ]


def test_step_on_a_host_without_toolkit_installs_only_that() -> None:
    respond = host(
        OK_SMI, PLAIN_DOCKER, NO_CTK, after={hp.DOCKER_PROBE.command: OK_DOCKER, "nvidia-ctk --version": OK_CTK}
    )
    actions, note = drive(prepare_host(context()), respond)
    commands = [a.command for a in actions if isinstance(a, Remote)]
    assert not any("apt-get" in c and "install -y nvidia-headless" in c for c in commands)
    assert not any("reboot" in c or "docker.io" in c for c in commands)
    assert "sudo -n nvidia-ctk runtime configure --runtime=docker" in commands
    assert note == (
        "installed NVIDIA Container Toolkit, docker nvidia runtime; now driver 580.95.05 (CUDA 13.0), "
        "docker 28.5.1 with nvidia runtime"
    )


def test_step_refuses_to_install_when_told_not_to() -> None:
    ctx = context(host={"install_missing": False})
    with pytest.raises(HostPrepError) as err:
        drive(prepare_host(ctx), host(OK_SMI, PLAIN_DOCKER, NO_CTK))
    assert "lacks NVIDIA Container Toolkit, docker nvidia runtime" in err.value.message
    assert "(F3)" in (err.value.hint or "") and "nvidia-ctk runtime configure" in (err.value.hint or "")


def test_runtime_without_the_toolkit_cli_installs_only_the_toolkit() -> None:
    """docker lists the nvidia runtime, nvidia-ctk is missing: two facts; the runtime is not 'lacking'."""
    ctx = context(host={"install_missing": False})
    with pytest.raises(HostPrepError) as err:
        drive(prepare_host(ctx), host(OK_SMI, OK_DOCKER, NO_CTK))
    assert err.value.message == (
        "the server lacks NVIDIA Container Toolkit (driver 580.95.05 (CUDA 13.0), docker 28.5.1 with nvidia "
        "runtime, no NVIDIA Container Toolkit CLI (nvidia-ctk)) and host.install_missing is false"
    )
    assert "nvidia-ctk runtime configure" not in (err.value.hint or "")
    respond = host(OK_SMI, OK_DOCKER, NO_CTK, after={"nvidia-ctk --version": OK_CTK})
    actions, note = drive(prepare_host(context()), respond)
    commands = [a.command for a in actions if isinstance(a, Remote)]
    assert any("install -y nvidia-container-toolkit" in c for c in commands)
    assert not any("runtime configure" in c or "systemctl restart docker" in c for c in commands)
    assert note == (
        "installed NVIDIA Container Toolkit; now driver 580.95.05 (CUDA 13.0), docker 28.5.1 with nvidia runtime"
    )


def test_toolkit_without_the_runtime_only_configures_docker() -> None:
    ctx = context(host={"install_missing": False})
    with pytest.raises(HostPrepError) as err:
        drive(prepare_host(ctx), host(OK_SMI, PLAIN_DOCKER, OK_CTK))
    assert "lacks docker nvidia runtime (driver 580.95.05 (CUDA 13.0), docker 28.5.1 without the nvidia runtime)" in (
        err.value.message
    )
    respond = host(OK_SMI, PLAIN_DOCKER, OK_CTK, after={hp.DOCKER_PROBE.command: OK_DOCKER})
    actions, note = drive(prepare_host(context()), respond)
    commands = [a.command for a in actions if isinstance(a, Remote)]
    assert not any("nvidia-container-toolkit" in c or "apt-get" in c for c in commands)
    assert "sudo -n nvidia-ctk runtime configure --runtime=docker" in commands
    assert "sudo -n systemctl restart docker" in commands
    assert note and note.startswith("installed docker nvidia runtime; now")


def test_build_tools_only_for_vllm_from_pip_and_only_what_is_missing() -> None:
    pip = context(engine={"kind": "vllm", "model": "m", "install": {"method": "pip"}})
    headers_only = Result(
        rc=1, stdout="build-essential installed\n", stderr="dpkg-query: no packages found matching python3-dev\n"
    )
    respond = host(OK_SMI, OK_DOCKER, OK_CTK, after={hp.BUILD_PROBE.command: BUILD_OK})

    def with_build(action: Action) -> Result:
        if isinstance(action, Remote) and action.command == hp.BUILD_PROBE.command and not installs:
            return headers_only
        if isinstance(action, Remote) and "apt-get" in action.command and "install" in action.command:
            installs.append(action.command)
        return respond(action)

    installs: list[str] = []
    actions, note = drive(prepare_host(pip), with_build)
    assert installs == [
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y python3-dev"
    ]
    assert note and note.startswith("installed C compiler and Python headers (python3-dev); now")
    assert hp.parse_build_packages(0, "build-essential installed\npython3-dev installed\n") == ()
    assert hp.parse_build_packages(0, "build-essential installed\npython3-dev config-files\n") == ("python3-dev",)
    docker = context(engine={"kind": "vllm", "model": "m", "install": {"method": "docker"}})
    actions, _ = drive(prepare_host(docker), host(OK_SMI, OK_DOCKER, OK_CTK))
    assert not any(isinstance(a, Remote) and a.command == hp.BUILD_PROBE.command for a in actions)
    compiles = context(
        engine={"kind": "vllm", "model": "m", "install": {"method": "docker"}},
        host={"pytorch": {"enabled": True}, "compile_check": True},
    )
    assert host_needs(compiles).build_tools and not host_needs(docker).build_tools


def test_step_reboots_after_a_driver_install_and_checks_the_boot_time() -> None:
    boots = iter(["2025-11-28 09:00:00", "2025-11-28 09:00:00", "2025-11-28 09:02:30"])
    driver_loaded: list[bool] = []

    def respond(action: Action) -> Result:
        if isinstance(action, Remote):
            if action.command == "nvidia-smi":
                return OK_SMI if driver_loaded else (Result(rc=9, stdout=F1) if installed else Result(rc=127))
            if action.command == "uptime -s":
                return Result(stdout=next(boots) + "\n")
            if action.command == "sudo -n reboot":
                driver_loaded.append(True)
                return Result()
            if action.command == hp.BUILD_PROBE.command:
                return BUILD_OK if installed else BUILD_NONE
            if "apt-get" in action.command and "install" in action.command:
                installed.append(action.command)
        return Result()

    installed: list[str] = []
    ctx = context(engine={"kind": "vllm", "model": "m"}, host={"reboot_timeout": "1m"})
    actions, note = drive(prepare_host(ctx), respond)
    build = [a.command for a in actions if isinstance(a, Remote) and "build-essential" in a.command]
    assert build == [
        hp.BUILD_PROBE.command,
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y build-essential "
        "python3-dev",
        hp.BUILD_PROBE.command,
    ]
    kinds = [type(a).__name__ for a in actions]
    assert kinds.count("Connect") == 2, "the first reconnect still saw the old boot, so it waits and tries again"
    assert all(a.fresh for a in actions if isinstance(a, Connect))
    assert any(isinstance(a, Pause) for a in actions)
    assert note and note.startswith(
        "installed NVIDIA driver 580-server, C compiler and Python headers (build-essential, python3-dev); "
        "rebooted; now driver 580.95.05"
    )


def test_driver_not_loaded_on_arrival_is_a_gpu_error() -> None:
    with pytest.raises(GpuVerificationError, match="cannot communicate"):
        drive(prepare_host(context()), host(Result(rc=9, stdout=F1), OK_DOCKER, OK_CTK))


# ---------------------------------------------------------------- dry-run


def test_dry_run_labels_installs_as_conditional(tmp_path: Path) -> None:
    cfg = tmp_path / "d.yaml"
    cfg.write_text(
        "name: dry\nssh: {user: ubuntu, private_key: /keys/id}\n"
        "engine: {kind: vllm, model: m, install: {method: docker}}\n"
        "host: {pytorch: {enabled: true, cuda: cu128}}\nmonitoring: {prometheus_config: null}\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = run_cli("deploy", str(cfg), "--dry-run", env=env).stdout
    section = out[out.index("] prepare-host") : out.index("] verify-gpu")]
    for text in (
        "remote: nvidia-smi\n",
        "docker info --format",
        "nvidia-ctk --version",
        "only if missing: NVIDIA driver 580-server",
        "only if missing: NVIDIA Container Toolkit",
        "only if the new driver is not loaded yet: reboot and reconnect",
        "remote: sudo -n reboot",
        "ssh: reconnect ubuntu@<server.ip>:22",
        "docker run --rm --gpus all ubuntu:24.04 nvidia-smi -L",
    ):
        assert text in section, text
    assert "--index-url https://download.pytorch.org/whl/cu128" in out
    doc = json.loads(run_cli("deploy", str(cfg), "--dry-run", "--json", env=env).stdout)
    prep = next(s for s in doc["steps"] if s["kind"] == "prepare-host")
    assert any("apt-get" in a for a in prep["actions"]) and prep["status"] == "ok"


# ---------------------------------------------------------------- on mock hosts (real sshd, recorded installs)


def _deploy_on_mock(cloud: MockCloud, tmp_path: Path, env: dict[str, str], name: str, **cfg: Any) -> Any:
    """Deploy with docker (or cfg's engine install) and host settings; returns the process."""
    path = write_config(cloud, tmp_path, None, name=name, **cfg.pop("engine", {}))
    data = yaml.safe_load(path.read_text())
    data["host"] = cfg.pop("host", {})
    data["engine"]["health"] = {"timeout": "60s", "interval": "0.3s", "completion_check": False}
    path.write_text(yaml.safe_dump(data))
    return run_cli("deploy", str(path), env=env)


def _installed(cloud: MockCloud) -> list[str]:
    logs = [h.home / "installed.log" for h in cloud.hosts]
    return [line for log in logs if log.exists() for line in log.read_text().splitlines()]


DOCKER_ENGINE = {"install": {"method": "docker", "image": "vllm/vllm-openai:v0.11.0"}}


@needs_sshd
def test_mock_host_with_the_runtime_but_no_ctk_gets_only_the_toolkit(
    cloud: MockCloud,  # noqa: F811
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    for h in cloud.hosts:
        h.set_knobs(no_ctk_cli=True)
    refused = _deploy_on_mock(cloud, tmp_path, env, "noctk", engine=DOCKER_ENGINE, host={"install_missing": False})
    assert refused.returncode == 7, refused.stderr
    assert "the server lacks NVIDIA Container Toolkit (driver 580.95.05 (CUDA 13.0), docker 28.5.1 with nvidia " \
        "runtime, no NVIDIA Container Toolkit CLI (nvidia-ctk))" in refused.stderr
    assert "docker nvidia runtime" not in refused.stderr and _installed(cloud) == []
    proc = _deploy_on_mock(cloud, tmp_path, env, "noctk", engine=DOCKER_ENGINE)
    assert proc.returncode == 0, proc.stderr
    log = _installed(cloud)
    assert "apt-get install nvidia-container-toolkit" in log
    assert not any(line.startswith(("nvidia-ctk runtime", "systemctl restart docker")) for line in log), log
    assert run_cli("teardown", "noctk", "--yes", env=env).returncode == 0


@needs_sshd
def test_mock_host_with_the_toolkit_but_no_runtime_only_configures_docker(
    cloud: MockCloud,  # noqa: F811
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    for h in cloud.hosts:
        h.set_knobs(no_runtime=True)
    proc = _deploy_on_mock(cloud, tmp_path, env, "nort", engine=DOCKER_ENGINE)
    assert proc.returncode == 0, proc.stderr
    log = _installed(cloud)
    assert log == ["nvidia-ctk runtime configure --runtime=docker", "systemctl restart docker"]
    assert run_cli("teardown", "nort", "--yes", env=env).returncode == 0


@needs_sshd
def test_mock_host_without_build_tools_gets_them_for_vllm_from_pip(
    cloud: MockCloud,  # noqa: F811
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    for h in cloud.hosts:
        h.set_knobs(no_build_tools=True)
    proc = _deploy_on_mock(cloud, tmp_path, env, "nocc", engine={"install": {"method": "pip"}})
    assert proc.returncode == 0, proc.stderr
    assert _installed(cloud) == ["apt-get update", "apt-get install build-essential python3-dev"]
    assert "installed C compiler and Python headers (build-essential, python3-dev)" in proc.stderr
    assert run_cli("teardown", "nocc", "--yes", env=env).returncode == 0


def test_one_sudo_decision_for_installs_and_the_auto_stop_timer() -> None:
    """hostprep.sudo decides for every step: root runs commands as they are, others through `sudo -n`."""
    from orchestrator.steps.autostop import auto_stop

    for user, poweroff in (("ubuntu", "sudo -n shutdown -h now"), ("root", "shutdown -h now")):
        cfg = DeploymentConfig.model_validate(
            {"name": "ttl", "ssh": {"user": user, "private_key": "/keys/id"}, "provider": {"ttl": "8h"},
             "engine": {"kind": "vllm", "model": "m"}}
        )
        ctx = StepContext(cfg=cfg, dep=Deployment(name="ttl", config_path="/x.yaml"), store=None)
        actions, _ = drive(auto_stop(ctx), lambda a: Result.unknown())
        (timer,) = [a for a in actions if isinstance(a, Remote)]
        assert f"; {poweroff}'" in timer.command and hp.sudo(["shutdown", "-h", "now"], user) == poweroff
        if user == "root":
            assert "sudo" not in timer.command
