"""SSH transport (paramiko): one connection per run, TCP_NODELAY, pinned host keys, no pty."""

from __future__ import annotations

import select
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from orchestrator.actions import Connect, Result
from orchestrator.errors import CommandFailed, HostKeyMismatch, OrchestratorError, SSHError
from orchestrator.retry import call_with_retries

if TYPE_CHECKING:
    import paramiko


def host_key_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


class SshSession:
    """Holds the run's single SSH connection; every remote action goes through it."""

    def __init__(self, on_retry: object = None) -> None:
        self._transport: paramiko.Transport | None = None
        self._target: tuple[str, int, str] | None = None
        self.host_key: str | None = None
        self.home: str | None = None  # the login $HOME, learnt from the plan's HomeProbe; prefixes relative uploads
        self.on_retry = on_retry

    @property
    def connected(self) -> bool:
        return self._transport is not None and self._transport.is_active()

    def connect(self, action: Connect) -> str:
        """Connect (retrying while the server boots) and return the server's host key line."""
        target = (action.host, action.port, action.user)
        if self.connected and self._target == target and not action.fresh:
            assert self.host_key is not None
            return self.host_key
        self.close()
        import paramiko

        try:
            pkey = paramiko.PKey.from_path(action.key_file)
        except FileNotFoundError:
            raise SSHError(
                f"SSH private key not found: {action.key_file}", "set ssh.private_key in the config"
            ) from None
        except (paramiko.SSHException, ValueError) as exc:
            raise SSHError(f"cannot load SSH private key {action.key_file}: {exc}") from None
        started = time.monotonic()

        def attempt() -> paramiko.Transport:
            return self._open(action, pkey, auth_transient=time.monotonic() - started < action.auth_grace)

        def note(exc: BaseException, n: int) -> None:
            if callable(self.on_retry):
                self.on_retry(f"ssh {action.host}:{action.port} not ready ({exc}); retrying")

        self._transport = call_with_retries(attempt, deadline=action.deadline, on_retry=note)
        self._target = target
        assert self.host_key is not None
        return self.host_key

    def _open(self, action: Connect, pkey: paramiko.PKey, *, auth_transient: bool) -> paramiko.Transport:
        import paramiko

        try:
            sock = socket.create_connection((action.host, action.port), timeout=10)
        except OSError as exc:
            raise SSHError(f"cannot reach {action.host}:{action.port}: {exc}", transient=True) from exc
        # Without TCP_NODELAY every command on a reused connection stalls ~40 ms (Nagle + delayed ACK).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=15)
            key = host_key_line(transport.get_remote_server_key())
            if action.pinned_host_key and key != action.pinned_host_key:
                raise HostKeyMismatch(
                    f"host key of {action.host} changed since it was pinned (now {key.split()[0]})",
                    "if the server was really re-created, run `orchestrator redeploy --recreate` or remove "
                    "server.host_key from the deployment's state file; otherwise someone may be intercepting",
                )
            transport.auth_publickey(action.user, pkey)
        except HostKeyMismatch:
            transport.close()
            raise
        except paramiko.AuthenticationException as exc:
            transport.close()
            raise SSHError(
                f"SSH authentication failed for {action.user}@{action.host}: {exc}",
                "check ssh.user and that ssh.private_key matches the key given to the server",
                transient=auth_transient,
            ) from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            transport.close()
            raise SSHError(f"SSH handshake with {action.host} failed: {exc}", transient=True) from exc
        self.host_key = key
        return transport

    def _require(self) -> paramiko.Transport:
        if self._transport is None or not self._transport.is_active():
            raise SSHError("not connected to the server", "the connect step must run first", transient=True)
        return self._transport

    def run(self, command: str, timeout: float) -> Result:
        """Run a command (no pty) and collect stdout/stderr; timeout → CommandFailed(rc=124)."""
        import paramiko

        transport = self._require()
        try:
            chan = transport.open_session(timeout=15)
            chan.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SSHError(f"SSH connection lost while starting a command: {exc}", transient=True) from exc
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            while True:
                if chan.recv_ready():
                    out += chan.recv(65536)
                    continue
                if chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    continue
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if chan.closed or not transport.is_active():
                    raise SSHError("SSH connection lost during a command", transient=True)
                if time.monotonic() > deadline:
                    chan.close()
                    raise CommandFailed(
                        ["sh", "-c", command],
                        124,
                        out.decode(errors="replace"),
                        f"timed out after {timeout:.0f}s",
                    )
                select.select([chan], [], [], 0.05)
            rc = chan.recv_exit_status()
        finally:
            chan.close()
        return Result(rc=rc, stdout=out.decode(errors="replace"), stderr=err.decode(errors="replace"))

    def put(self, dest: str, content: str, mode: int) -> None:
        self._sftp_write(dest, mode, lambda fh: fh.write(content.encode()))

    def put_file(self, src: Path, dest: str, mode: int) -> None:
        """Copy a local file in chunks (model weights can be large); same temp name + rename as ``put``."""
        try:
            local = open(src, "rb")  # noqa: SIM115 - closed below, after the transfer
        except OSError as exc:
            raise OrchestratorError(f"cannot read {src}: {exc.strerror}", "check the local model files") from None

        def copy(fh: BinaryIO) -> None:
            while chunk := local.read(1 << 20):
                fh.write(chunk)

        with local:
            self._sftp_write(dest, mode, copy)

    def _sftp_write(self, dest: str, mode: int, write: Callable[[BinaryIO], object]) -> None:
        import paramiko

        transport = self._require()
        if not dest.startswith("/") and self.home:
            dest = f"{self.home.rstrip('/')}/{dest}"
        try:
            sftp = paramiko.SFTPClient.from_transport(transport)
            if sftp is None:
                raise SSHError("SFTP subsystem unavailable on the server")
            with sftp:
                tmp = f"{dest}.tmp-orchestrator"
                with sftp.open(tmp, "w") as fh:
                    sftp.chmod(tmp, mode)  # before any byte lands, so secrets are never world-readable
                    fh.set_pipelined(True)
                    write(cast(BinaryIO, fh))
                try:
                    sftp.posix_rename(tmp, dest)
                except OSError:
                    sftp.rename(tmp, dest)
                if stat.S_IMODE(sftp.stat(dest).st_mode or 0) != mode:
                    sftp.chmod(dest, mode)
        except (paramiko.SSHException, EOFError) as exc:
            raise SSHError(f"uploading {dest} failed: {exc}", transient=True) from exc
        except OSError as exc:
            raise SSHError(f"uploading {dest} failed: {exc}", "check that the directory exists") from exc

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = None
        self._target = None
