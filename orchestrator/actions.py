"""Plans are data: the actions a step asks the runner to perform, and the result each one returns.

Steps never touch the network, the host or the disk themselves. They yield these frozen values; the
runner hands each to an executor (real or recording) and sends the ``Result`` back into the step.
Every action renders itself as one human line for progress output and ``--dry-run`` transcripts;
secrets never appear in those lines (uploads that carry secrets show only their size).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Result:
    """What an action returned. ``known`` is False when a recording executor could not know it (dry-run)."""

    rc: int = 0
    stdout: str = ""
    stderr: str = ""
    known: bool = True

    @property
    def ok(self) -> bool:
        return self.known and self.rc == 0

    @classmethod
    def unknown(cls) -> Result:
        return cls(rc=0, stdout="", stderr="", known=False)


@dataclass(frozen=True)
class Local:
    """Run a program on this machine (upctl, promtool). argv never holds a secret: upctl reads env."""

    argv: tuple[str, ...]
    purpose: str
    timeout: float = 300.0
    mutates: bool = False

    def describe(self) -> str:
        return f"local: {shlex.join(self.argv)}"


@dataclass(frozen=True)
class Connect:
    """Open (or reuse) the SSH connection to the server, pinning its host key."""

    host: str
    port: int
    user: str
    key_file: str
    pinned_host_key: str | None
    deadline: float  # seconds to keep retrying while sshd boots
    auth_grace: float = 90.0  # seconds during which "auth failed" still means "cloud-init not done"
    fresh: bool = False  # drop any open connection first (after a reboot, or to pick up new group membership)
    public_key_file: str = ""  # picks the ssh-agent key to use; the private key file is the fallback
    passphrase_env: str | None = None  # env var holding the key file's passphrase (the value never enters a plan)
    keepalive: float = 15.0  # seconds between SSH keepalives, so idle NAT mappings survive long commands

    def describe(self) -> str:
        pin = "pinned host key" if self.pinned_host_key else "pin host key on first contact"
        verb = "reconnect" if self.fresh else "connect"
        return f"ssh: {verb} {self.user}@{self.host}:{self.port} ({pin}, retry up to {self.deadline:.0f}s)"


WAIT_MARGIN = 300.0  # seconds of work allowed after a command's own wait (the dpkg lock, a `timeout N`) ends
_WAITS = (
    (re.compile(r"Lock::Timeout=(\d+)"), 1),  # apt-get -o DPkg::Lock::Timeout=N
    (re.compile(r"(?:^|[\s;&|(])timeout\s+(?:-{1,2}[a-z-]+(?:[= ]\S+)?\s+)*(\d+)(?![\d.])"), 1),  # timeout N CMD
    (re.compile(r"-lt (\d+) \]; do sleep (\d+(?:\.\d+)?)"), 2),  # a poll loop: up to N sleeps of S seconds
)


def contained_wait(command: str) -> float:
    """The longest wait a command line contains by its own options (seconds); 0 when none is recognised."""
    longest = 0.0
    for pattern, groups in _WAITS:
        for m in pattern.finditer(command):
            wait = float(m.group(1)) * (float(m.group(2)) if groups == 2 else 1.0)
            longest = max(longest, wait)
    return longest


@dataclass(frozen=True)
class Remote:
    """Run a shell command on the host. Built only from quoted values (shlex), never from raw config text.

    The one rule for timeouts: a command that waits by itself (the dpkg lock, ``timeout N``, a poll loop)
    gets at least that wait plus WAIT_MARGIN, whatever its builder asked for, so our limit never fires first.
    """

    command: str
    purpose: str
    timeout: float = 300.0

    def __post_init__(self) -> None:
        wait = contained_wait(self.command)
        if wait and self.timeout < wait + WAIT_MARGIN:
            object.__setattr__(self, "timeout", wait + WAIT_MARGIN)

    def describe(self) -> str:
        return f"remote: {self.command}"


@dataclass(frozen=True)
class HomeProbe(Remote):
    """The login shell's $HOME; the executor keeps the answer: relative upload paths live under it."""

    command: str = 'printf %s "$HOME"'
    purpose: str = "the login $HOME (relative upload paths are under it, as for remote commands)"
    timeout: float = 30.0


@dataclass(frozen=True)
class Upload:
    """Write a file on the host (SFTP). ``secret`` content is never shown."""

    dest: str
    content: str
    mode: int = 0o644
    secret: bool = False

    def describe(self) -> str:
        size = len(self.content.encode())
        what = f"{size} bytes, secret values hidden" if self.secret else f"{size} bytes"
        return f"upload: {self.dest} (mode {self.mode:04o}, {what})"


@dataclass(frozen=True)
class UploadFile:
    """Copy a local file (binary, e.g. model weights) to the host over SFTP: temp name, then rename."""

    src: Path
    dest: str
    mode: int = 0o644

    def describe(self) -> str:
        try:
            size = f"{self.src.stat().st_size} bytes"
        except OSError:
            size = "missing locally"
        return f"upload: {self.dest} <- {self.src} (mode {self.mode:04o}, {size})"


@dataclass(frozen=True)
class ReadLocal:
    """Read a local file (for merging); missing file → rc 1."""

    path: Path

    def describe(self) -> str:
        return f"read: {self.path}"


@dataclass(frozen=True)
class WriteLocal:
    """Write a local file atomically (orchestrator.atomic). ``keep_existing``: an existing file keeps its mode/owner."""

    path: Path
    content: str
    mode: int = 0o644
    keep_existing: bool = False

    def describe(self) -> str:
        how = f"mode {self.mode:04o}"
        if self.keep_existing:
            how += " if new, else its mode and owner kept"
        return f"write: {self.path} ({how}, {len(self.content.encode())} bytes)"


@dataclass(frozen=True)
class RemoveLocal:
    """Delete a local file (a missing one is not an error)."""

    path: Path

    def describe(self) -> str:
        return f"remove: {self.path}"


@dataclass(frozen=True)
class Pause:
    """Wait before polling again."""

    seconds: float
    reason: str

    def describe(self) -> str:
        return f"wait: {self.seconds:g}s ({self.reason})"


@dataclass(frozen=True)
class HttpCheck:
    """An HTTP request that must answer as ``expect`` says; with ``wait`` it polls until ready or deadline.

    While polling, connection refused/reset and 5xx/400 mean "still starting". ``liveness`` is a remote
    command that exits non-zero once the engine process is gone; ``log_tail`` fetches its log so the error
    can explain what happened.
    """

    method: str
    url: str
    expect: str  # a key of health.EXPECTATIONS
    expect_arg: str = ""
    json_body: str | None = None
    bearer_secret: str | None = None  # name of a secret in the run's secret store
    wait: float | None = None
    interval: float = 2.0
    liveness: Remote | None = None
    log_tail: Remote | None = None
    timeout: float = 10.0
    labels: tuple[tuple[str, str], ...] = field(default=())
    subject: str = "the engine"  # what answers at ``url``, as an error names it

    def describe(self) -> str:
        """One line: the request, and the remote commands it runs (liveness while polling, the log on failure)."""
        auth = " (Authorization: Bearer ***)" if self.bearer_secret else ""
        until = f", poll every {self.interval:g}s up to {self.wait:.0f}s" if self.wait else ""
        arg = f" {self.expect_arg}" if self.expect_arg else ""
        line = f"http: {self.method} {self.url}{auth} expect {self.expect}{arg}{until}"
        if self.liveness is not None and self.wait:
            line += f"; while polling, is it alive: {self.liveness.describe()}"
        if self.log_tail is not None:
            line += f"; if it fails, its log: {self.log_tail.describe()}"
        return line


@dataclass(frozen=True)
class LockLocal:
    """Take an exclusive lock (flock) on a local lock file, held across the actions that follow until UnlockLocal.

    Serialises read-merge-write-check-reload of a file that several orchestrator processes share (prometheus.yml).
    The executor also releases it when the run ends; the kernel does when the process dies.
    """

    path: Path
    purpose: str
    wait: float = 300.0

    def describe(self) -> str:
        return f"lock: {self.path} ({self.purpose}; wait up to {self.wait:.0f}s)"


@dataclass(frozen=True)
class UnlockLocal:
    """Release the lock a LockLocal took on a local file."""

    path: Path

    def describe(self) -> str:
        return f"unlock: {self.path}"


@dataclass(frozen=True)
class OnNode:
    """An action for one named server of a cluster (its own SSH session: transports/nodes.py routes it)."""

    node: str | None  # None: this machine (local files), not a node
    action: Action

    def describe(self) -> str:
        return f"[{self.node or 'local'}] {self.action.describe()}"


Action = (
    Local
    | Connect
    | Remote
    | Upload
    | UploadFile
    | ReadLocal
    | WriteLocal
    | RemoveLocal
    | Pause
    | HttpCheck
    | LockLocal
    | UnlockLocal
    | OnNode
)
