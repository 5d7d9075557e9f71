"""`orchestrator logs NAME`: the engine's log on the server, over SSH with the pinned host key.

Which log: `docker logs` for a container (Triton, TF Serving, vLLM's docker method), else the engine's log file
(the detached process writes it, and so does the systemd unit: StandardOutput=append:). The command is the
engine's own (engines/logs.py, which Engine.log_command uses); `-f` streams it until Ctrl-C, which ends it with
exit 0. A fleet's NAME (not NAME/rI) shows every replica's log at once, each line prefixed `[rI] ` as it arrives.

How: OpenSSH's `ssh`, pinned to $ORCHESTRATOR_HOME/known_hosts as `orchestrator ssh` runs it, with the command
built from the state's config snapshot (no pydantic, no paramiko: the command starts within the 100 ms budget).
The validated way (config model, Engine.log_command, paramiko) where that cannot be: no `ssh` on PATH, a snapshot
without the values (an older state file), or a key passphrase in the variable ssh.passphrase_env names (paramiko
reads it; OpenSSH would prompt).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.commands.target import (
    SshTarget,
    load_fleet_targets,
    load_light_target,
    load_target,
    read_view,
    split_ref,
)
from orchestrator.errors import ConfigError, SSHError

if TYPE_CHECKING:
    from orchestrator.config import DeploymentConfig


def logs(name: str, *, tail: int, since: str | None, follow: bool, debug: bool) -> int:
    """Print (or follow) the engine's log; returns the exit code: the remote command's, 0 after Ctrl-C."""
    import shutil

    from orchestrator.commands.remote import INTERRUPTED
    from orchestrator.console import guard

    with guard(debug):
        if tail < 0:
            raise ConfigError(f"--tail {tail}: give a number of lines >= 0")
        view = read_view(split_ref(name)[0])  # read once: the fleet's targets or the one server's
        fleet = load_fleet_targets(name, view)
        ssh_bin = shutil.which("ssh")
        if fleet is not None:  # a whole fleet: every replica's log at once, each line prefixed [rI]
            targets, snapshot = fleet
            command = light_log_command(snapshot, tail, since, follow)
            if command is None or ssh_bin is None or not _no_passphrase_env(snapshot):
                raise SSHError(
                    f"showing every replica's log of {name} at once needs OpenSSH's `ssh` (and a key it can read "
                    "without a passphrase prompt)",
                    f"name one replica, e.g. `orchestrator logs {name}/r{targets[0][0]}`",
                )
            if debug:
                print(f"remote: {command}", flush=True)
            rc = _fleet(ssh_bin, name, targets, command)
            return 0 if rc == INTERRUPTED and follow else rc
        light, snapshot = load_light_target(name, view)
        command = light_log_command(snapshot, tail, since, follow)
        if light is not None and command is not None and ssh_bin is not None and _no_passphrase_env(snapshot):
            if debug:
                print(f"remote: {command}", flush=True)
            rc = _openssh(ssh_bin, light, command)
        else:
            rc = _validated(name, tail, since, follow, debug)
        return 0 if rc == INTERRUPTED and follow else rc
    return 1  # not reached: guard exits on every error


def light_log_command(snapshot: dict[str, Any], tail: int, since: str | None, follow: bool) -> str | None:
    """validated_log_command's text from the config snapshot, or None where the snapshot lacks what it needs."""
    from orchestrator.engines.logs import snapshot_log_command

    return snapshot_log_command(snapshot, tail, since, follow)


def validated_log_command(cfg: DeploymentConfig, tail: int, since: str | None, follow: bool) -> str:
    """The log a server of ``cfg`` keeps: a Ray node's Serve logs, else the engine's (Engine.log_command)."""
    if cfg.cluster is not None:
        from orchestrator.engines.logs import ray_log_command

        return ray_log_command(cfg.cluster.temp_dir, tail, since, follow)
    from orchestrator.engines import engine_for

    return engine_for(cfg).log_command(tail, since, follow)


def _no_passphrase_env(snapshot: dict[str, Any]) -> bool:
    """False where the key's passphrase is in the environment variable ssh.passphrase_env names: paramiko reads it
    there, OpenSSH would ask for it."""
    import os

    ssh = snapshot.get("ssh")
    env = ssh.get("passphrase_env") if isinstance(ssh, dict) else None
    return not (isinstance(env, str) and os.environ.get(env))


def _openssh(ssh_bin: str, target: SshTarget, command: str) -> int:
    """``command`` on the server through OpenSSH, its output straight to ours; 130 after Ctrl-C."""
    import subprocess

    from orchestrator.commands.remote import INTERRUPTED
    from orchestrator.commands.ssh import SSH_FAILED, ensure_pinned, openssh_argv

    argv = openssh_argv(ssh_bin, target, ensure_pinned(target), command)
    try:
        # no stdin, as on the paramiko path: the command sees EOF
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode
    except KeyboardInterrupt:  # ssh is stopped with us; the remote command gets SIGHUP
        return INTERRUPTED
    if rc == SSH_FAILED:  # ssh's own failure (unreachable, refused key): ssh said why on stderr
        raise SSHError(
            f"cannot reach {target.ip}:{target.port} or log in as {target.user} (ssh exit {rc})",
            f"is the server up? see `orchestrator status {target.name}`",
        )
    return rc


def _fleet(ssh_bin: str, name: str, targets: list[tuple[int, SshTarget | SSHError]], command: str) -> int:
    """``command`` on every replica through OpenSSH at once, each output line prefixed `[rI] ` as it arrives
    (stdout to ours, stderr to ours); 130 after Ctrl-C. A replica that cannot be reached (no pinned key, ssh's own
    failure) is named after the others' output, as an SSHError (exit 5); else the first non-zero remote exit."""
    import subprocess
    import sys
    import threading

    from orchestrator.commands.remote import INTERRUPTED
    from orchestrator.commands.ssh import SSH_FAILED, ensure_pinned, openssh_argv

    lock = threading.Lock()
    closed = threading.Event()  # our output went away (`| head`): every ssh is stopped, as a broken pipe stops one

    def copy(prefix: bytes, source: Any, sink: Any) -> None:
        for line in iter(source.readline, b""):
            with lock:
                if closed.is_set():
                    continue  # drain, so the ssh is never stuck on a full pipe
                try:
                    sink.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
                    sink.flush()
                except OSError:  # BrokenPipeError and the like
                    closed.set()
                    for _, _, proc in running:
                        proc.terminate()

    unreachable = [f"{name}/r{n}: {t.message}" for n, t in targets if isinstance(t, SSHError)]
    running: list[tuple[int, SshTarget, subprocess.Popen[bytes]]] = []
    readers: list[threading.Thread] = []
    try:
        for number, target in targets:
            if isinstance(target, SSHError):
                continue
            argv = openssh_argv(ssh_bin, target, ensure_pinned(target), command)
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            running.append((number, target, proc))
            for source, sink in ((proc.stdout, sys.stdout.buffer), (proc.stderr, sys.stderr.buffer)):
                reader = threading.Thread(target=copy, args=(f"[r{number}] ".encode(), source, sink), daemon=True)
                reader.start()
                readers.append(reader)
        codes = [(number, target, proc.wait()) for number, target, proc in running]
        for reader in readers:
            reader.join()
    except KeyboardInterrupt:  # every ssh is stopped with us; the remote commands get SIGHUP
        for _, _, proc in running:
            proc.terminate()
        return INTERRUPTED
    if closed.is_set():  # nobody reads what is left; Python's own flush at exit must not fail on it either
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    unreachable += [
        f"{name}/r{n}: cannot reach {t.ip}:{t.port} or log in as {t.user} (ssh exit {rc})"
        for n, t, rc in codes
        if rc == SSH_FAILED
    ]
    if unreachable:
        raise SSHError(
            f"{len(unreachable)} of {len(targets)} replica(s) not shown: {'; '.join(unreachable)}",
            f"is the server up? see `orchestrator status {name}`",
        )
    return next((rc for _, _, rc in codes if rc != 0), 0)


def _validated(name: str, tail: int, since: str | None, follow: bool, debug: bool) -> int:
    """The config model's engine and paramiko: where OpenSSH or the snapshot's values are missing."""
    from orchestrator.commands.remote import stream_command

    target = load_target(name)
    command = validated_log_command(target.cfg, tail, since, follow)
    if debug:
        print(f"remote: {command}", flush=True)
    return stream_command(target, command)
