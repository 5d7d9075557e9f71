"""`orchestrator ssh NAME [-- CMD...]`: a shell on the server, or one command with its exit status passed through.

OpenSSH's `ssh` when it is installed, pinned to $ORCHESTRATOR_HOME/known_hosts with StrictHostKeyChecking=yes
(never a prompt, never trust on first use); paramiko otherwise (one command; a shell needs OpenSSH).
CMD: one argument is a shell command line (as with ssh: `-- 'ls | wc -l'`); several are quoted as argv
(`-- sh -c 'exit 3'` runs exactly that).
"""

from __future__ import annotations

import os
import shlex
import shutil

from orchestrator.commands.target import SshTarget, load_ssh_target
from orchestrator.errors import ConfigError, SSHError

CONNECT_TIMEOUT = 15  # seconds
SSH_FAILED = 255  # OpenSSH's exit status for its own errors


def remote_command(argv: list[str]) -> str:
    return argv[0] if len(argv) == 1 else shlex.join(argv)


def ensure_pinned(target: SshTarget) -> str:
    """$ORCHESTRATOR_HOME/known_hosts with this deployment's pinned key (written from state if it lacks it)."""
    from orchestrator import known_hosts
    from orchestrator.atomic import write_atomic

    path = known_hosts.path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise SSHError(f"cannot read {path}: {exc.strerror}") from None
    new = known_hosts.with_entry(text, target.known_as or target.name, target.ip, target.port, target.host_key)
    if new != text:
        try:
            write_atomic(path, new, 0o600)
        except OSError as exc:
            raise SSHError(f"cannot write {path}: {exc.strerror}") from None
    return str(path)


def openssh_argv(ssh_bin: str, target: SshTarget, known_hosts_file: str, command: str | None) -> list[str]:
    """OpenSSH with the pinned key only: no prompt, no TOFU, only the deployment's key offered."""
    argv = [
        ssh_bin,
        "-o",
        f"UserKnownHostsFile={known_hosts_file}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-i",
        str(target.private_key_path),
        "-o",
        f"ConnectTimeout={CONNECT_TIMEOUT}",
        "-p",
        str(target.port),
    ]
    if command is None:
        argv.append("-t")
    # `--`: nothing after it (the command included) is read as an ssh option
    return [*argv, "--", f"{target.user}@{target.ip}", *([command] if command is not None else [])]


def ssh(name: str, argv: list[str], *, debug: bool) -> int:
    from orchestrator.console import guard

    with guard(debug):
        target = load_ssh_target(name)
        if argv[:1] == ["--"]:  # click keeps the separator in the argument list
            argv = argv[1:]
        command = remote_command(argv) if argv else None
        ssh_bin = shutil.which("ssh")
        if ssh_bin is not None:
            full = openssh_argv(ssh_bin, target, ensure_pinned(target), command)
            if debug:
                print("exec: " + shlex.join(full), flush=True)
            if command is None:
                os.execv(ssh_bin, full)  # a shell: ssh takes over the terminal
            import subprocess

            rc = subprocess.run(full, check=False).returncode
            if rc == SSH_FAILED:  # ssh's own failure (unreachable, refused key): ssh said why on stderr
                raise SSHError(
                    f"ssh to {target.user}@{target.ip}:{target.port} failed (exit {rc})",
                    f"is the server up? see `orchestrator status {name}`",
                )
            return rc
        if command is None:
            raise ConfigError(
                "an interactive shell needs OpenSSH's `ssh`, which is not on PATH",
                f"install openssh-client, or run one command: orchestrator ssh {name} -- CMD",
            )
        from orchestrator.commands.remote import stream_command
        from orchestrator.commands.target import load_target

        return stream_command(load_target(name), command)
    return 1  # not reached: guard exits on every error
