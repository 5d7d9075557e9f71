"""SSH transport (paramiko): one connection per run, TCP_NODELAY, pinned host keys, no pty."""

from __future__ import annotations

import dataclasses
import select
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from orchestrator.actions import Connect, Result
from orchestrator.errors import (
    CommandFailed,
    ConfigError,
    ConnectionLost,
    HostKeyMismatch,
    OrchestratorError,
    SSHError,
)
from orchestrator.retry import RECONNECT_DEADLINE, call_with_retries
from orchestrator.transports.lines import LineSplitter, OnLine

if TYPE_CHECKING:
    import paramiko

IDLE_WAKE = 1.0  # seconds: how often paramiko's reader thread wakes on a quiet, established connection


def host_key_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


# ------------------------------------------------------------------ the client key: agent, key file, passphrase

_KEYS: dict[str, tuple[paramiko.PKey, str]] = {}  # by private key path: the preflight's load serves every Connect
_AGENT: list[paramiko.Agent] = []  # kept open for the run: agent keys sign through this connection


def _public_blob(public_key_file: str) -> str | None:
    try:
        fields = Path(public_key_file).expanduser().read_text().split()
    except OSError:
        return None
    return fields[1] if len(fields) >= 2 else None


def _agent_key(blob: str | None) -> paramiko.PKey | None:
    """The ssh-agent's key whose public half is ``blob`` (from ssh.public_key), or None."""
    import os

    if not blob or not os.environ.get("SSH_AUTH_SOCK"):
        return None
    import paramiko

    try:
        agent = paramiko.Agent()
        keys = agent.get_keys()
    except (paramiko.SSHException, OSError):
        return None
    for key in keys:
        if key.get_base64() == blob:
            _AGENT.append(agent)
            return key
    agent.close()
    return None


def _passphrase(passphrase_env: str | None, key_file: str) -> str | None:
    import os
    import sys

    if passphrase_env and os.environ.get(passphrase_env):
        return os.environ[passphrase_env]
    if sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty():
        import getpass

        return getpass.getpass(f"passphrase for {key_file}: ") or None
    return None


def load_client_key(key_file: str, public_key_file: str, passphrase_env: str | None) -> tuple[paramiko.PKey, str]:
    """The key that logs in, and where it came from: the ssh-agent key matching ``public_key_file`` first, then
    ``key_file`` (decrypted with $``passphrase_env``, or a prompt on a terminal). Loaded once per process.

    Raises ConfigError (exit 2) when neither works; the passphrase is never stored, logged or returned.
    """
    cache_key = key_file
    if cache_key in _KEYS:
        return _KEYS[cache_key]
    import paramiko

    blob = _public_blob(public_key_file)
    agent = _agent_key(blob)
    if agent is not None:
        _KEYS[cache_key] = (agent, "ssh-agent")
        return _KEYS[cache_key]
    env_hint = f"${passphrase_env}" if passphrase_env else "ssh.passphrase_env"
    try:
        try:
            pkey, where = paramiko.PKey.from_path(key_file), "key file"
        except (paramiko.PasswordRequiredException, TypeError):  # cryptography: "password was not provided"
            secret = _passphrase(passphrase_env, key_file)
            if secret is None:
                raise ConfigError(
                    f"SSH private key {key_file} is passphrase-protected and no passphrase was given",
                    f"add it to ssh-agent (ssh-add {key_file}) with ssh.public_key set, or put the passphrase in "
                    f"{env_hint}; on a terminal you are asked for it",
                    field="ssh.private_key",
                ) from None
            try:
                # paramiko types the password as str; its cryptography loader needs bytes
                pkey = paramiko.PKey.from_path(key_file, cast(str, secret.encode()))
                where = "key file, passphrase given"
            except (paramiko.SSHException, ValueError):
                raise ConfigError(
                    f"cannot decrypt SSH private key {key_file}: wrong passphrase",
                    f"check {env_hint}, or add the key to ssh-agent (ssh-add {key_file})",
                    field="ssh.private_key",
                ) from None
            finally:
                del secret
    except FileNotFoundError:
        held = " and ssh-agent holds no key matching ssh.public_key" if blob else ""
        raise ConfigError(
            f"SSH private key not found: {key_file}{held}",
            "create one with ssh-keygen -t ed25519, set ssh.private_key, or add the key to ssh-agent",
            field="ssh.private_key",
        ) from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise ConfigError(f"cannot load SSH private key {key_file}: {exc}", field="ssh.private_key") from None
    if blob and pkey.get_base64() != blob:
        raise ConfigError(
            f"SSH private key {key_file} does not match the public key {public_key_file}",
            "the server gets the public key and SSH logs in with the private one: point both at one key pair",
            field="ssh.public_key",
        )
    _KEYS[cache_key] = (pkey, where)
    return _KEYS[cache_key]


class SshSession:
    """Holds the run's single SSH connection; every remote action goes through it."""

    def __init__(self, on_retry: object = None) -> None:
        self._transport: paramiko.Transport | None = None
        self._target: tuple[str, int, str] | None = None
        self._last: Connect | None = None  # what to reconnect to after a reset, with the key pinned then
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
        pkey, _ = load_client_key(action.key_file, action.public_key_file, action.passphrase_env)
        started = time.monotonic()

        def attempt() -> paramiko.Transport:
            return self._open(action, pkey, auth_transient=time.monotonic() - started < action.auth_grace)

        def note(exc: BaseException, n: int) -> None:
            if callable(self.on_retry):
                self.on_retry(f"ssh {action.host}:{action.port} not ready ({exc}); retrying")

        self._transport = call_with_retries(attempt, deadline=action.deadline, on_retry=note)
        self._target = target
        self._last = dataclasses.replace(action, pinned_host_key=self.host_key)
        assert self.host_key is not None
        return self.host_key

    def _open(self, action: Connect, pkey: paramiko.PKey, *, auth_transient: bool) -> paramiko.Transport:
        import paramiko

        try:
            sock = socket.create_connection((action.host, action.port), timeout=min(10.0, max(1.0, action.deadline)))
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
        if action.keepalive > 0:  # long quiet commands (pip, apt, docker pull) outlive idle NAT/firewall timeouts
            transport.set_keepalive(max(1, int(action.keepalive)))
        # paramiko's reader thread wakes every 0.1 s on a quiet connection (its socket timeout) to see whether a
        # close, a rekey or a keepalive is due: CPU for nothing through a fleet's minutes of health waiting. Once
        # the session is up, once a second is enough for those: arriving data still wakes it at once, and close()
        # does not wait for it.
        sock.settimeout(IDLE_WAKE)
        self.host_key = key
        return transport

    def _require(self) -> paramiko.Transport:
        """The live connection; after a reset, a new one to the same host with the same pinned host key."""
        if self._transport is not None and self._transport.is_active():
            return self._transport
        last = self._last
        if last is None:
            raise SSHError("not connected to the server", "the connect step must run first", transient=True)
        if callable(self.on_retry):
            self.on_retry(f"ssh: the connection to {last.host}:{last.port} was lost; reconnecting (pinned host key)")
        again = dataclasses.replace(last, deadline=min(last.deadline, RECONNECT_DEADLINE), auth_grace=0.0, fresh=True)
        self.connect(again)
        assert self._transport is not None
        return self._transport

    def _lost(self, what: str, exc: BaseException | None = None) -> ConnectionLost:
        detail = f": {exc}" if exc is not None and str(exc) else ""
        return ConnectionLost(
            f"SSH connection lost {what}{detail}",
            "the step is re-run on a new connection; if this repeats, check the network path to the server",
        )

    def run(self, command: str, timeout: float, on_line: OnLine | None = None) -> Result:
        """Run a command (no pty) and collect stdout/stderr; timeout → CommandFailed(rc=124).

        ``on_line(stream, line)`` is called with each line as it arrives ("stdout" or "stderr"; a carriage return
        ends a line too, as progress bars use it); the Result still holds the whole output.
        """
        import paramiko

        transport = self._require()
        try:
            chan = transport.open_session(timeout=15)
            chan.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self._lost("while starting a command", exc) from exc
        out, err = bytearray(), bytearray()
        lines_out, lines_err = LineSplitter("stdout", on_line), LineSplitter("stderr", on_line)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if chan.recv_ready():
                    chunk = chan.recv(65536)
                    out += chunk
                    lines_out.feed(chunk)
                    continue
                if chan.recv_stderr_ready():
                    chunk = chan.recv_stderr(65536)
                    err += chunk
                    lines_err.feed(chunk)
                    continue
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    lines_out.flush()
                    lines_err.flush()
                    break
                if chan.closed or not transport.is_active():
                    raise self._lost("during a command")
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
            if rc == -1:  # paramiko: the channel closed without an exit status (the connection went away)
                raise self._lost("during a command")
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
            raise self._lost(f"while uploading {dest}", exc) from exc
        except OSError as exc:
            if not transport.is_active():
                raise self._lost(f"while uploading {dest}", exc) from exc
            raise SSHError(f"uploading {dest} failed: {exc}", "check that the directory exists") from exc

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = None
        self._target = None
