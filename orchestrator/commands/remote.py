"""One command on the deployment's server over paramiko, its output streamed as it comes, its exit status back.

The connection checks the pinned host key (SshSession refuses any other key: exit 5) and logs in with the
deployment's key (ssh-agent, key file, passphrase) exactly as deploy does.
"""

from __future__ import annotations

import select
import sys
from typing import TYPE_CHECKING, BinaryIO

from orchestrator.errors import SSHError

if TYPE_CHECKING:
    from orchestrator.commands.target import Target

CONNECT_DEADLINE = 15.0  # seconds of retrying an unreachable server before exit 5 (a deployed one answers at once)
INTERRUPTED = 130


def _write(stream: BinaryIO, data: bytes) -> None:
    stream.write(data)
    stream.flush()


def stream_command(target: Target, command: str) -> int:
    """Run ``command`` (shell text) on the server; copy its stdout/stderr to ours as they arrive.

    Returns its exit status; Ctrl-C closes the channel (the remote command gets SIGHUP) and returns 130.
    """
    import paramiko

    from orchestrator.actions import Connect
    from orchestrator.transports.ssh import SshSession

    ssh = target.cfg.ssh
    session = SshSession()
    try:
        session.connect(
            Connect(
                host=target.ip,
                port=ssh.port,
                user=ssh.user,
                key_file=str(ssh.private_key_path),
                pinned_host_key=target.host_key,
                deadline=min(CONNECT_DEADLINE, ssh.connect_timeout),
                auth_grace=0.0,  # a deployed server: "auth failed" is final
                public_key_file=str(ssh.public_key_path),
                passphrase_env=ssh.passphrase_env,
                keepalive=ssh.keepalive,
            )
        )
        transport = session._require()  # noqa: SLF001 - the connection just opened and checked
        try:
            chan = transport.open_session(timeout=15)
            chan.exec_command(command)
            chan.shutdown_write()  # no stdin: the command sees EOF
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SSHError(f"cannot start the command on {target.ip}: {exc}") from exc
        out, err = sys.stdout.buffer, sys.stderr.buffer
        try:
            while True:
                if chan.recv_ready():
                    _write(out, chan.recv(65536))
                    continue
                if chan.recv_stderr_ready():
                    _write(err, chan.recv_stderr(65536))
                    continue
                if chan.exit_status_ready():
                    # The exit status follows the output on the wire: what came with it is still to copy.
                    while chan.recv_ready():
                        _write(out, chan.recv(65536))
                    while chan.recv_stderr_ready():
                        _write(err, chan.recv_stderr(65536))
                    break
                if chan.closed or not transport.is_active():
                    raise SSHError(f"SSH connection to {target.ip} lost during the command")
                select.select([chan], [], [], 0.5)
            rc = chan.recv_exit_status()
        except KeyboardInterrupt:
            chan.close()
            return INTERRUPTED
        finally:
            chan.close()
        if rc == -1:
            raise SSHError(f"SSH connection to {target.ip} closed without an exit status")
        return rc
    finally:
        session.close()
