"""Mock GPU hosts: each host's sshd (its config, checked by sshd -t; its start; its banner; its listener PID)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from mockcloud.host_errors import MockHostError
from mockcloud.host_runtime import PACKAGE_DIR
from mockcloud.hostbase import _descendants, _proc_stat

SSHD = "/usr/sbin/sshd"


def _quote(value: str) -> str:
    if '"' in value or "\n" in value:
        raise MockHostError(f"path or value not usable in sshd_config: {value!r}")
    return f'"{value}"'


def write_sshd_config(
    config: Path, *, port: int, ipv4: str, key: Path, home: Path, user: str, env: dict[str, str]
) -> None:
    """One host's sshd_config at ``config``: ``user`` logs in with a key only, every session gets ``env``."""
    lines = [
        f"Port {port}",
        f"ListenAddress {ipv4}",
        f"HostKey {_quote(str(key))}",
        "PidFile none",
        f"AuthorizedKeysFile {_quote(str(home / 'authorized_keys'))}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no" if user != "root" else "PermitRootLogin prohibit-password",
        f"AllowUsers {user}",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "MaxSessions 64",
        "MaxStartups 200:30:400",
        f"Subsystem sftp internal-sftp -d {_quote(str(home))}",  # sftp starts in $HOME too
        "LogLevel INFO",
        "SetEnv " + " ".join(_quote(f"{k}={v}") for k, v in env.items()),
    ]
    config.write_text("\n".join(lines) + "\n")
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise MockHostError(f"sshd -t rejected {config}:\n{check.stdout}{check.stderr}")


def launch_sshd(config: Path, log: Path, netns: str | None, own_pids: bool) -> subprocess.Popen[bytes]:
    """Start one host's sshd in the foreground, its output in ``log``: in ``netns`` if any, and with ``own_pids``
    under a PID 1 of its own (mockcloud/pid_init.py)."""
    argv = [SSHD, "-D", "-e", "-f", str(config)]
    if netns and own_pids:  # unshare stays the parent; --kill-child: the namespace goes with it
        init = [sys.executable, "-I", str(PACKAGE_DIR / "pid_init.py")]
        argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *init, *argv]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    with open(log, "ab") as log_file:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        )


def wait_for_banner(proc: subprocess.Popen[bytes], ip: str, port: int, log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MockHostError(f"sshd on {ip}:{port} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection((ip, port), timeout=1.0) as conn:
                if conn.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            time.sleep(0.01)
    raise MockHostError(f"sshd on {ip}:{port} sent no banner within {timeout:.0f}s:\n{log.read_text()}")


def listener_pid(proc: subprocess.Popen[bytes]) -> int:
    """The sshd listener's PID (as this machine sees it) under unshare -> pid_init.py -> sshd."""
    for pid in _descendants(proc.pid):
        stat = _proc_stat(pid)
        try:  # the executables: sshd retitles itself ("sshd: /usr/sbin/sshd -D ... [listener] ...")
            exe = os.readlink(f"/proc/{pid}/exe")
            parent = os.readlink(f"/proc/{stat[1]}/exe") if stat else ""
        except OSError:
            continue
        if exe == SSHD and parent != SSHD:
            return pid
    raise MockHostError(f"no sshd listener found under PID {proc.pid}")
