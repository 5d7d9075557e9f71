"""The fake upctl's world: state.json under an flock, faults.json knobs, the hosts.json pool, id makers."""

from __future__ import annotations

import fcntl
import json
import os

from mockcloud import upctl_paths as paths

TYPE_CHECKING = False  # typing, pathlib, contextlib are not imported at run time: the fake starts once per call
if TYPE_CHECKING:
    from pathlib import Path
    from random import SystemRandom
    from types import TracebackType
    from typing import Any

HOME_ENV = "FAKE_UPCTL_HOME"
STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
FAULTS_FILE = "faults.json"
HOSTS_FILE = "hosts.json"
STATE_VERSION = 1
POWEROFF_TIMEOUT_S = 30.0
FAIL_KINDS = ("5xx", "capacity", "quota", "timeout", "response_lost", "auth", "ratelimit")


class WorldError(Exception):
    """The world directory or one of its files is missing or unreadable (the fake exits 100)."""


class HostEntry:
    """One mock host that a created server can be bound to."""

    __slots__ = ("ipv4", "authorized_keys", "poweroff", "netns")

    def __init__(
        self, ipv4: str, authorized_keys: str, poweroff: tuple[str, ...] | None, netns: str | None = None
    ) -> None:
        self.ipv4 = ipv4
        self.authorized_keys = authorized_keys
        self.poweroff = poweroff
        self.netns = netns  # the host's network namespace: its fake UpCloud firewall is applied there


class FailSpec:
    """An injected API failure for one invocation of a command."""

    __slots__ = ("kind", "timeout_seconds")

    def __init__(self, kind: str, timeout_seconds: float) -> None:
        self.kind = kind
        self.timeout_seconds = timeout_seconds


def home_from_env() -> str:
    """$FAKE_UPCTL_HOME as ``str(Path(value))``."""
    value = os.environ.get(HOME_ENV, "")
    if not value:
        raise WorldError(
            f"{HOME_ENV} is not set: the fake upctl keeps its world (state.json, faults.json, hosts.json) "
            "in that directory; export it first"
        )
    return paths.pure(value)


def empty_state() -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "servers": [],
        "storages": [],
        "fail_signature": None,
        "fail_remaining": {},
    }


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        return json.loads(text)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WorldError(f"cannot read {what} {path}: {exc}") from exc


_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _mkstemp(directory: str, prefix: str) -> tuple[int, str]:
    """tempfile.mkstemp(prefix=prefix, dir=directory) without importing tempfile (shutil, random: ~5 ms)."""
    for _ in range(os.TMP_MAX):
        name = "".join(_TEMP_CHARS[b % len(_TEMP_CHARS)] for b in os.urandom(8))
        path = os.path.join(directory, prefix + name)
        try:
            return os.open(path, _TEMP_FLAGS, 0o600), os.path.abspath(path)
        except FileExistsError:
            continue
    raise FileExistsError(f"No usable temporary file name found in {directory}")


def _write_json_atomic(directory: str, name: str, data: Any) -> None:
    fd, tmp = _mkstemp(directory, f".{name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, paths.join(directory, name))
    except BaseException:
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _Locked:
    """flock on the world's lock file for the duration of a ``with`` block."""

    def __init__(self, path: str, mode: int) -> None:
        self._path = path
        self._mode = mode

    def __enter__(self) -> None:
        self._lock = open(self._path, "a+", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        try:
            fcntl.flock(self._lock.fileno(), self._mode)
        except BaseException:
            self._lock.close()
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
        finally:
            self._lock.close()


class _Transaction:
    """World.transaction(): the state under an exclusive lock, written back when the block ends cleanly."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._locked = _Locked(world.file(LOCK_FILE), fcntl.LOCK_EX)

    def __enter__(self) -> dict[str, Any]:
        self._locked.__enter__()
        try:
            self._state = self._world._load()
        except BaseException:
            self._locked.__exit__(None, None, None)
            raise
        return self._state

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if kind is None:
                _write_json_atomic(self._world.directory, STATE_FILE, self._state)
        finally:
            self._locked.__exit__(None, None, None)


class World:
    """Access to one world directory; every read-modify-write happens inside `transaction()`."""

    def __init__(self, home: Path | str) -> None:
        self.home = home
        self.directory = paths.pure(os.fspath(home))  # str(Path(home)), as shown in messages
        try:
            paths.mkdir(self.directory, parents=True, exist_ok=True)
        except OSError as exc:
            raise WorldError(f"cannot create {HOME_ENV} directory {self.directory}: {exc}") from exc

    def file(self, name: str) -> str:
        return paths.join(self.directory, name)

    def _load(self) -> dict[str, Any]:
        data = _read_json(self.file(STATE_FILE), "world file")
        if data is None:
            return empty_state()
        if not isinstance(data, dict) or not isinstance(data.get("servers"), list):
            raise WorldError(f"world file {self.file(STATE_FILE)} is not a fake-upctl state")
        base = empty_state()
        base.update(data)
        return base

    def transaction(self) -> _Transaction:
        """Exclusive lock; the yielded state is written back (atomically) when the block ends cleanly."""
        return _Transaction(self)

    def snapshot(self) -> dict[str, Any]:
        with _Locked(self.file(LOCK_FILE), fcntl.LOCK_SH):
            return self._load()

    def faults(self) -> dict[str, Any]:
        data = _read_json(self.file(FAULTS_FILE), "faults file")
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise WorldError(f"faults file {self.file(FAULTS_FILE)} must hold a JSON object")
        return data

    def hosts(self) -> list[HostEntry] | None:
        data = _read_json(self.file(HOSTS_FILE), "host pool")
        if data is None:
            return None
        if not isinstance(data, list):
            raise WorldError(f"host pool {self.file(HOSTS_FILE)} must hold a JSON list")
        entries: list[HostEntry] = []
        for item in data:
            if not isinstance(item, dict) or not item.get("ipv4") or not item.get("authorized_keys"):
                raise WorldError(f"host pool entry needs ipv4 and authorized_keys: {item!r}")
            poweroff = item.get("poweroff")
            entries.append(
                HostEntry(
                    str(item["ipv4"]),
                    str(item["authorized_keys"]),
                    tuple(str(a) for a in poweroff) if poweroff else None,
                    str(item["netns"]) if item.get("netns") else None,
                )
            )
        return entries

    def host_for(self, ipv4: str | None) -> HostEntry | None:
        if not ipv4:
            return None
        return next((h for h in self.hosts() or [] if h.ipv4 == ipv4), None)


def take_failure(state: dict[str, Any], faults: dict[str, Any], command: str) -> FailSpec | None:
    """Consume one injected failure for `command` (counters live in the state, reset when `fail` changes)."""
    fail = faults.get("fail") or {}
    signature = json.dumps(fail, sort_keys=True)
    if state.get("fail_signature") != signature:
        state["fail_signature"] = signature
        state["fail_remaining"] = {name: int(spec.get("times", 1)) for name, spec in fail.items()}
        state["fail_skip"] = {name: int(spec.get("skip", 0)) for name, spec in fail.items()}
    skip = state.setdefault("fail_skip", {})
    if int(skip.get(command, 0)) > 0:  # `skip`: the first N invocations of the command still succeed
        skip[command] = int(skip[command]) - 1
        return None
    remaining = int(state["fail_remaining"].get(command, 0))
    if remaining <= 0:
        return None
    state["fail_remaining"][command] = remaining - 1
    spec = fail[command]
    kind = str(spec.get("kind", "5xx"))
    timeout = float(spec.get("timeout_seconds", faults.get("timeout_seconds", 2)))
    return FailSpec(kind if kind in FAIL_KINDS else "5xx", timeout)


def return_failure(state: dict[str, Any], command: str) -> None:
    """An injected failure the invocation never reached (e.g. its name did not resolve) stays pending."""
    remaining = state.get("fail_remaining") or {}
    if command in remaining:
        remaining[command] = int(remaining[command]) + 1


def bind_host(pool: list[HostEntry], servers: list[dict[str, Any]]) -> HostEntry | None:
    used = {s.get("pool_ipv4") for s in servers}
    return next((h for h in pool if h.ipv4 not in used), None)


def write_authorized_keys(host: HostEntry, keys: list[str]) -> None:
    from pathlib import Path  # server create only

    path = Path(host.authorized_keys)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}\n" for k in keys), encoding="utf-8")
        os.chmod(path, 0o644)
    except OSError as exc:
        raise WorldError(f"cannot write authorized_keys of mock host {host.ipv4}: {exc}") from exc


def power_off(host: HostEntry | None) -> None:
    """Run the host's poweroff argv (kills the mock host's processes), then take its network down: a powered-off
    server answers nothing, SSH included (netns hosts; a loopback host's sshd keeps answering). Output and failures
    are ignored."""
    if host is None or not host.poweroff:
        return
    _quietly(list(host.poweroff))
    _link(host, "down")


def power_on(host: HostEntry | None) -> None:
    """A server bound to ``host`` runs (created, or started again): its network is up."""
    _link(host, "up")


def _link(host: HostEntry | None, state: str) -> None:
    if host is not None and host.netns:
        _quietly(["ip", "-n", host.netns, "link", "set", "eth0", state])


def _quietly(argv: list[str]) -> None:
    import contextlib
    import subprocess

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=POWEROFF_TIMEOUT_S,
            check=False,
        )


def set_faults(home: Path, **faults: object) -> None:
    """Replace faults.json with `faults` (none → no faults) and restart the fail-N-times counters."""
    world = World(home)
    if faults:
        _write_json_atomic(world.directory, FAULTS_FILE, faults)
    else:
        paths.unlink(world.file(FAULTS_FILE), missing_ok=True)
    with world.transaction() as state:
        state["fail_signature"] = None
        state["fail_remaining"] = {}


def read_state(home: Path) -> dict[str, Any]:
    return World(home).snapshot()


_RNG: list[SystemRandom] = []


def _rng() -> SystemRandom:
    if not _RNG:
        import random  # only the commands that make new resources need it

        _RNG.append(random.SystemRandom())
    return _RNG[0]


def new_uuid(prefix: str) -> str:
    """8-4-4-4-12 UUID whose first two hex digits are `prefix` (servers 00, storages 01, networks 03)."""
    digits = prefix + "".join(_rng().choice("0123456789abcdef") for _ in range(30))
    variant = _rng().choice("89ab")
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:32]}"


def new_mac() -> str:
    return "ee:1b:db:" + ":".join(f"{_rng().randrange(256):02x}" for _ in range(3))


def new_host_id() -> int:
    return _rng().randrange(5_000_000_000, 9_000_000_000)


def new_serial() -> str:
    return str(_rng().randrange(1_320_000_000_000, 1_329_999_999_999))


def new_password() -> str:
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(_rng().choice(alphabet) for _ in range(16))


def new_public_ipv4(taken: set[str]) -> str:
    while True:
        address = f"94.237.{_rng().randrange(1, 255)}.{_rng().randrange(2, 255)}"
        if address not in taken:
            return address


def new_utility_ipv4(taken: set[str]) -> str:
    while True:
        address = f"10.{_rng().randrange(1, 255)}.{_rng().randrange(0, 255)}.{_rng().randrange(2, 255)}"
        if address not in taken:
            return address


def new_ipv6() -> str:
    groups = ":".join(f"{_rng().randrange(1, 0xFFFF):x}" for _ in range(4))
    return f"2a04:3545:1000:720:{groups}"
