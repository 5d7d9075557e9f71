"""prepare-host: detect driver, docker and NVIDIA Container Toolkit; install only what is missing; reboot; verify."""

from __future__ import annotations

import time
from collections.abc import Generator

from orchestrator import hostprep as hp
from orchestrator.actions import Action, Connect, Pause, Remote, Result
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import CommandFailed, GpuVerificationError, HostKeyMismatch, HostPrepError, SSHError
from orchestrator.failures import by_code, explain
from orchestrator.gpu import explain_nvidia_smi_failure
from orchestrator.steps.host import connect_action

FactsGen = Generator[Action, Result, hp.HostFacts | None]
FlagGen = Generator[Action, Result, bool]


def host_needs(ctx: StepContext) -> hp.Needs:
    """What the engine and host.* need: docker only for engines that run in containers."""
    engine = ctx.engine
    method = str(getattr(engine, "method", ""))
    flag = getattr(engine, "needs_docker", None)
    docker = flag if isinstance(flag, bool) else method == "docker" or engine.kind in ("triton", "tfserving")
    h = ctx.cfg.host
    venv = method == "pip" or h.pytorch.enabled or h.tensorflow.enabled
    # vLLM from pip (Triton JIT at engine start) and host.compile_check (torch.compile / XLA) compile C on the host.
    compiles = h.compile_check and (h.pytorch.enabled or h.tensorflow.enabled)
    build = getattr(engine, "needs_build_tools", False) is True or compiles
    return hp.Needs(
        docker=docker, python_venv=venv, driver_branch=h.driver_branch, user=ctx.cfg.ssh.user, build_tools=build
    )


def detect(ctx: StepContext, needs: hp.Needs) -> FactsGen:
    """The read-only probes; None when their results are unknown (dry-run)."""
    r = yield hp.SMI_PROBE
    known = r.known
    driver = hp.parse_nvidia_smi(r.rc, r.stdout + r.stderr)
    venv: bool | None = None
    if needs.python_venv:
        r = yield hp.VENV_PROBE
        known, venv = known and r.known, r.rc == 0
    build: tuple[str, ...] | None = None
    if needs.build_tools:
        r = yield hp.BUILD_PROBE
        known, build = known and r.known, hp.parse_build_packages(r.rc, r.stdout)
    docker: hp.Docker | None = None
    toolkit: hp.Toolkit | None = None
    if needs.docker:
        r = yield hp.DOCKER_PROBE
        known, docker = known and r.known, hp.parse_docker(r.rc, r.stdout + r.stderr)
        if r.known and docker.state == "no-access":
            r = yield hp.docker_as_root(needs.user)
            docker = hp.with_root_view(docker, r.rc, r.stdout + r.stderr)
        r = yield hp.CTK_PROBE
        known, toolkit = known and r.known, hp.parse_ctk(r.rc, r.stdout + r.stderr)
    return hp.HostFacts(driver, docker, toolkit, venv, build) if known else None


def refuse_broken(facts: hp.HostFacts, *, after_reboot: bool = False) -> None:
    """Problems that installing cannot fix: a driver that is there but does not work, a snap docker."""
    d = facts.driver
    if d.state in ("not-loaded", "mismatch", "error") or (after_reboot and d.state == "missing"):
        err = explain_nvidia_smi_failure(d.rc, d.output)
        if after_reboot:
            raise GpuVerificationError(
                f"{err.message}, even after installing the driver and rebooting",
                "The driver packages are installed but the kernel module did not load. Check Secure Boot "
                "('mokutil --sb-state': an unsigned DKMS module is refused), 'dkms status' (built for 'uname -r'?) "
                "and 'dmesg | grep -i nvrm' (nouveau holding the GPU).",
                details=err.details,
            )
        raise err
    docker = facts.docker
    if docker is not None and docker.state == "snap":
        raise HostPrepError(
            f"docker on the server is the snap package ({docker.path}), which cannot use the NVIDIA runtime",
            "Remove it ('sudo snap remove docker') and run again: the orchestrator then installs Ubuntu's "
            f"docker.io.\n{explain(by_code('F3'))}",
        )
    if docker is not None and docker.state == "error":
        raise HostPrepError("`docker info` failed on the server", "see the command output above", details=docker.output)


def _install_failed(cmd: Remote, r: Result, user: str) -> HostPrepError:
    out = (r.stdout + r.stderr).strip()
    hint = "see the command output above"
    if "password is required" in out or "terminal is required" in out:
        hint = f"{user} needs passwordless sudo on the server, or log in as root (ssh.user)"
    elif "Could not get lock" in out or "dpkg frontend lock" in out:
        hint = "another apt run (unattended-upgrades on a fresh server) holds the lock: wait a few minutes, run again"
    elif "Unable to locate package" in out:
        hint = "the package is not in the server's apt sources: check host.driver_branch and the server's OS"
    elif "Could not resolve host" in out or "Temporary failure resolving" in out:
        hint = "the server cannot reach the package repositories: check its network and DNS"
    return HostPrepError(f"{cmd.purpose} failed (exit {r.rc})", hint, details=out[-3000:] or None)


def _missing_error(facts: hp.HostFacts, plan: list[hp.Install]) -> HostPrepError:
    names = [item.title for item in plan if item.key != "apt-update"]
    hint = f"set host.install_missing: true, or install them yourself: {hp.manual_commands(plan)}"
    if any(item.key == "runtime" for item in plan):
        hint = f"{explain(by_code('F3'))}\n{hint}"
    if any(item.key == "build-tools" for item in plan):
        hint = f"{explain(by_code('F17'))}\n{hint}"
    return HostPrepError(
        f"the server lacks {', '.join(names)} ({hp.summary(facts)}) and host.install_missing is false", hint
    )


def _reconnect(ctx: StepContext, deadline: float) -> Connect:
    return connect_action(ctx, deadline, auth_grace=0.0, fresh=True)


def reboot(ctx: StepContext) -> StepGen:
    """Reboot, wait until the server is back with a new boot time, and reconnect (same pinned host key)."""
    r = yield Remote(hp.BOOT_PROBE, "boot time before the reboot", timeout=30)
    before = r.stdout if r.ok else None
    try:
        cmd = hp.reboot_command(ctx.cfg.ssh.user)
        r = yield cmd
        if r.known and r.rc != 0:
            raise _install_failed(cmd, r, ctx.cfg.ssh.user)
    except (SSHError, CommandFailed) as exc:
        if isinstance(exc, HostKeyMismatch):
            raise
        ctx.notify("the SSH connection dropped as the server went down for the reboot")
    timeout = ctx.cfg.host.reboot_timeout
    deadline = time.monotonic() + timeout
    yield Pause(3.0, "the server is rebooting")
    while True:
        try:
            yield _reconnect(ctx, max(deadline - time.monotonic(), 5.0))
        except SSHError as exc:
            if isinstance(exc, HostKeyMismatch):
                raise
            raise SSHError(
                f"the server did not come back within {timeout:.0f}s of the reboot: {exc.message}",
                "check the server's console in the UpCloud control panel, then run the same command again "
                "(it resumes and installs nothing twice)",
            ) from None
        r = yield Remote(hp.BOOT_PROBE, "boot time after the reboot", timeout=30)
        if not r.known or hp.rebooted(before, r.stdout):
            return None
        if time.monotonic() > deadline:
            raise HostPrepError(
                f"the server did not reboot within {timeout:.0f}s (its boot time is still {before or '?'})",
                "reboot it yourself ('sudo reboot') and run the same command again",
            )
        yield Pause(5.0, "the server has not gone down yet")


def load_driver(ctx: StepContext, dry: bool) -> FlagGen:
    """After a driver install: reboot only when nvidia-smi cannot talk to the new driver yet. True if rebooted."""
    r = yield Remote("nvidia-smi", "is the new driver loaded? (if not, reboot)", timeout=60)
    drv = hp.parse_nvidia_smi(r.rc, r.stdout + r.stderr)
    if r.known and drv.state == "ok":
        return False
    if r.known and drv.state not in ("not-loaded", "mismatch"):
        raise explain_nvidia_smi_failure(drv.rc, drv.output)
    if dry:
        ctx.notify("only if the new driver is not loaded yet: reboot and reconnect")
    yield from reboot(ctx)
    return True


def smoke_test(ctx: StepContext, needs: hp.Needs) -> StepGen:
    if not needs.docker:
        return None
    cmd = hp.gpu_smoke_test()
    r = yield cmd
    if r.known and r.rc != 0:
        raise HostPrepError(
            f"a container cannot use the GPU: `{cmd.command}` exited {r.rc}",
            "see the command output above",
            details=(r.stdout + r.stderr).strip()[-3000:] or None,
        )
    return None


def _remember(ctx: StepContext, facts: hp.HostFacts) -> None:
    ctx.facts["driver_version"] = facts.driver.version
    ctx.facts["driver_cuda"] = facts.driver.cuda


def _warn_old_driver(ctx: StepContext, facts: hp.HostFacts) -> None:
    have, want = facts.driver.branch, int(ctx.cfg.host.driver_branch)
    if have is not None and have < want:
        ctx.notify(
            f"warning: driver {facts.driver.version} is older than the {want} branch configured in "
            "host.driver_branch; it is not upgraded automatically. vLLM and Triton images need a driver >= 575 "
            "(else: 'unsatisfied condition: cuda>=...', F4)"
        )


def prepare_host(ctx: StepContext) -> StepGen:
    needs = host_needs(ctx)
    facts = yield from detect(ctx, needs)
    if facts is not None:
        refuse_broken(facts)
        _warn_old_driver(ctx, facts)
    plan = hp.install_plan(facts, needs)
    if facts is not None and not plan:
        yield from smoke_test(ctx, needs)
        _remember(ctx, facts)
        return f"{hp.summary(facts)}: nothing to install"
    if facts is not None and not ctx.cfg.host.install_missing:
        raise _missing_error(facts, plan)
    if facts is None:
        ctx.notify("probe results are unknown in a dry run; a bare server gets these installs, each only if missing:")
    reconnect = False
    for item in plan:
        if facts is None:
            ctx.notify(f"only if missing: {item.title}")
        for cmd in item.commands:
            r = yield cmd
            if r.known and r.rc != 0:
                raise _install_failed(cmd, r, needs.user)
        reconnect = reconnect or item.reconnect
    rebooted = False
    if any(item.key == "driver" for item in plan):
        rebooted = yield from load_driver(ctx, dry=facts is None)
    if reconnect and not rebooted:
        yield _reconnect(ctx, 120.0)
    final = yield from detect(ctx, needs)
    if final is not None:
        refuse_broken(final, after_reboot=rebooted)
        left = [item.title for item in hp.install_plan(final, needs) if item.key != "apt-update"]
        if left:
            raise HostPrepError(
                f"still missing after the installs: {', '.join(left)} ({hp.summary(final)})",
                "see the install output with --debug; run the same command again to retry",
            )
        _remember(ctx, final)
    yield from smoke_test(ctx, needs)
    if final is None:
        return "dry run: installs above run only for what the probes find missing"
    done = ", ".join(item.title for item in plan if item.key != "apt-update")
    return f"installed {done}{'; rebooted' if rebooted else ''}; now {hp.summary(final)}"
