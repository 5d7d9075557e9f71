"""Host steps: connect over SSH (pinning the host key), verify the GPU, install the serving stack."""

from __future__ import annotations

import shlex

from orchestrator import known_hosts
from orchestrator.actions import Connect, HomeProbe, Remote
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import HostPrepError
from orchestrator.gpu import check_gpus, explain_nvidia_smi_failure, parse_query, query_argv


def connect_action(ctx: StepContext, deadline: float, **overrides: object) -> Connect:
    """The one way a step builds its SSH connection: the deployment's key, agent/passphrase, keepalive, pin."""
    ssh = ctx.cfg.ssh
    fields: dict[str, object] = {
        "host": ctx.ip,
        "port": ssh.port,
        "user": ssh.user,
        "key_file": str(ssh.private_key_path),
        "pinned_host_key": ctx.dep.server.host_key if ctx.dep.server else None,
        "deadline": deadline,
        "public_key_file": str(ssh.public_key_path),
        "passphrase_env": ssh.passphrase_env,
        "keepalive": ssh.keepalive,
    }
    fields.update(overrides)
    return Connect(**fields)  # type: ignore[arg-type]


def connect(ctx: StepContext) -> StepGen:
    ssh = ctx.cfg.ssh
    pinned = ctx.dep.server.host_key if ctx.dep.server else None
    r = yield connect_action(ctx, ssh.connect_timeout)
    yield HomeProbe()  # the executor keeps the answer: relative uploads land under $HOME
    if not r.known or ctx.dep.server is None:
        yield from known_hosts.record(ctx.host_name, ctx.ip, ssh.port, pinned or "<key-type> <host key>")
        return None
    key = r.stdout.strip()
    if pinned is None:
        ctx.dep.server.host_key = key
        ctx.save()
    # The same pin for plain OpenSSH: ssh -o UserKnownHostsFile=$ORCHESTRATOR_HOME/known_hosts ...
    yield from known_hosts.record(ctx.host_name, ctx.ip, ssh.port, key)
    if pinned is None:
        return f"connected; host key {key.split()[0]} pinned (also in {known_hosts.path()})"
    return "connected; host key matches the pinned one"


def verify_gpu(ctx: StepContext) -> StepGen:
    r = yield Remote(shlex.join(query_argv()), "query the GPUs", timeout=60)
    if not r.known:
        return None
    if r.rc != 0:
        raise explain_nvidia_smi_failure(r.rc, r.stdout + r.stderr)
    gpus = parse_query(r.stdout)
    srv = ctx.dep.server
    count = ctx.cfg.gpu.count or (srv.gpu_amount if srv and srv.gpu_amount else 1)
    model = ctx.cfg.gpu.model or (srv.gpu_model if srv and srv.gpu_model else "NVIDIA L40S")
    check_gpus(gpus, count, model)
    ctx.facts["gpu_count"] = len(gpus)
    first = gpus[0]
    mem = f", {first.memory_total_mib} MiB" if first.memory_total_mib else ""
    return f"{len(gpus)}x {first.name}, driver {first.driver}{mem}"


def install_stack(ctx: StepContext) -> StepGen:
    engine = ctx.engine
    probe = engine.install_probe()
    r = yield probe
    if r.ok and r.stdout.strip():
        return f"already installed ({r.stdout.strip().splitlines()[-1]})"
    for cmd in engine.install():
        r = yield cmd
        if r.known and r.rc != 0:
            out = (r.stdout + r.stderr).strip()
            hint = "see the output above; fix the host or set engine.install.method"
            if "ensurepip" in out or "python3-venv" in out:
                hint = "install the venv module on the host: apt-get install -y python3-venv"
            raise HostPrepError(f"{cmd.purpose} failed (exit {r.rc})", hint, details=out[-3000:])
    if r.known and r.stdout.strip():
        return f"installed ({r.stdout.strip().splitlines()[-1]})"
    return None
