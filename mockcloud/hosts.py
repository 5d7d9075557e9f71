"""Mock GPU hosts: one real OpenSSH sshd per host, in its own network namespace or on a loopback address."""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

if not __package__:  # run as a script (a host's `poweroff` argv): the checkout joins the import path
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from mockcloud.hostbase import (  # noqa: E402, F401 - re-exported: the mock cloud's and the tests' names
    DEFAULT_KNOBS,
    ENGINE_FAILURES,
    _ancestors,
    _descendants,
    _has_env,
    _proc_stat,
    pid_alive,
    poweroff_host,
    read_knobs,
    terminate_pids,
    write_knobs,
)

HostMode = Literal["auto", "netns", "loopback"]

SSHD = "/usr/sbin/sshd"
LOGIN_USER_WHEN_ROOT = "gpuops"
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
HOSTBIN = PACKAGE_DIR / "hostbin"
_LOCK_NAME = b"\0mockcloud-hosts-setup"  # abstract unix socket: a lock that vanishes with its holder


class MockHostError(RuntimeError):
    """A mock host could not be set up or torn down."""


@dataclass(frozen=True)
class MockHost:
    """One running mock host, as the orchestrator and the fake upctl see it."""

    name: str
    ipv4: str
    ssh_port: int
    user: str
    home: Path
    authorized_keys: Path
    host_key_pub: str
    knobs_file: Path
    poweroff: list[str]
    sshd_pid: int = 0
    netns: str | None = None

    def set_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Merge ``knobs`` into the host's knobs file; shims and engines read it when they start."""
        merged = read_knobs(self.home)
        merged.update(knobs)
        write_knobs(self.knobs_file, merged)
        return merged

    def reset_knobs(self) -> None:
        """Put every knob back to its default."""
        write_knobs(self.knobs_file, dict(DEFAULT_KNOBS))
        for recorded in ("hoststate.json", "installed.log"):  # what the install shims recorded (hoststate.py)
            (self.home / recorded).unlink(missing_ok=True)


# ---------------------------------------------------------------- helpers


def _run(argv: list[str], what: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise MockHostError(f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n{proc.stderr.strip()}")
    return proc.stdout


@contextlib.contextmanager
def _setup_lock(timeout: float = 60.0) -> Iterator[None]:
    """Serialise address selection between concurrent runs on this machine."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.bind(_LOCK_NAME)
            break
        except OSError:
            if time.monotonic() > deadline:
                sock.close()
                raise MockHostError("timed out waiting for another mock-host run to finish its setup") from None
            time.sleep(0.05)
    try:
        yield
    finally:
        sock.close()


def usable_by_others(path: Path) -> bool:
    """True when users other than the owner can traverse to ``path`` and read it."""
    path = path.resolve()
    for part in [*reversed(path.parents), path]:
        mode = part.stat().st_mode
        if not mode & 0o001 or (part == path and not mode & 0o004):
            return False
    return True


def _port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def _ensure_login_user() -> str:
    """The dedicated, unlocked ``gpuops`` account (root's shell profile is slow, never log in as root)."""
    try:
        pwd.getpwnam(LOGIN_USER_WHEN_ROOT)
    except KeyError:
        made = subprocess.run(
            ["useradd", "-m", "-s", "/bin/bash", LOGIN_USER_WHEN_ROOT],
            capture_output=True,
            text=True,
            check=False,
        )
        try:  # a concurrent run may have created it first, so look again rather than trusting the exit code
            pwd.getpwnam(LOGIN_USER_WHEN_ROOT)
        except KeyError:
            raise MockHostError(f"useradd {LOGIN_USER_WHEN_ROOT} failed: {made.stderr.strip()}") from None
    shadow = Path("/etc/shadow").read_text().splitlines()
    entry = next((line.split(":") for line in shadow if line.startswith(LOGIN_USER_WHEN_ROOT + ":")), None)
    if entry is None or entry[1].startswith("!"):
        _run(["usermod", "-p", "*", LOGIN_USER_WHEN_ROOT], "unlocking the gpuops account")
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    return LOGIN_USER_WHEN_ROOT


def _quote(value: str) -> str:
    if '"' in value or "\n" in value:
        raise MockHostError(f"path or value not usable in sshd_config: {value!r}")
    return f'"{value}"'


def _wait_for_banner(proc: subprocess.Popen[bytes], ip: str, port: int, log: Path, timeout: float = 10.0) -> None:
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


def new_root(prefix: str = "mockcloud-") -> Path:
    """A new world-traversable dir in /tmp for MockHosts (pytest's tmp_path is 0700: gpuops can't enter)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    return root


# ---------------------------------------------------------------- what host commands run with

SHIMS = tuple(sorted(p.name for p in HOSTBIN.iterdir() if not p.name.startswith(".")))
HOST_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class HostRuntime:
    """A mock host's python, import path and shims (mockcloud/hostbin), all usable by the host's login user."""

    python: str
    path: str  # PYTHONPATH: where `mockcloud` (and, for a system python, prometheus_client) is imported from
    hostbin: Path

    def env(self, home: Path) -> dict[str, str]:
        """The environment every command on the host starts with: the shims come before any real tool."""
        return {
            "PATH": f"{self.hostbin}:{HOST_SYSTEM_PATH}",
            "HOME": str(home),
            "MOCKCLOUD_PYTHON": self.python,
            "MOCKHOST_HOME": str(home),
            "PYTHONPATH": self.path,
        }


def host_runtime(root: Path, *, other_user: bool, package_dir: Path = PACKAGE_DIR) -> HostRuntime:
    """What the host's commands run with. When the login user is another account (we are root) and cannot read
    this python (root's pyenv), prometheus_client or the checkout (a clone in a 0700 dir), the system python runs
    copies of mockcloud and prometheus_client put in ``root/hostlib``, which the login user can read."""
    import prometheus_client

    here = HostRuntime(sys.executable, str(package_dir.parent), package_dir / "hostbin")
    if not other_user:
        return _compiled(here, package_dir)
    prom_dir = Path(prometheus_client.__file__).parent
    needed = (Path(sys.executable), Path(os.__file__).parent, prom_dir, package_dir, package_dir / "hostbin")
    if all(usable_by_others(p) for p in needed):
        return _compiled(here, package_dir)
    system = next((p for p in ("/usr/local/bin/python3", "/usr/bin/python3") if os.path.exists(p)), None)
    if system is None or not usable_by_others(Path(system)):
        raise MockHostError(f"no python usable by the mock host user: {sys.executable} is private, no /usr/bin/python3")
    hostlib = root / "hostlib"
    skip = shutil.ignore_patterns("__pycache__")
    for src, name in ((prom_dir, "prometheus_client"), (package_dir, "mockcloud")):
        if not (hostlib / name).exists():
            shutil.copytree(src, hostlib / name, ignore=skip)
    _compiled(HostRuntime(system, str(hostlib), hostlib / "mockcloud" / "hostbin"), hostlib)  # + prometheus_client
    for folder, _, files in os.walk(hostlib):
        os.chmod(folder, 0o755)
        for file in files:
            path = os.path.join(folder, file)
            os.chmod(path, os.stat(path).st_mode | 0o444)
    runtime = HostRuntime(system, str(hostlib), hostlib / "mockcloud" / "hostbin")
    if not usable_by_others(runtime.hostbin):
        raise MockHostError(f"{hostlib} is not reachable by the mock host user: a parent directory is private")
    return runtime


def _compiled(runtime: HostRuntime, package_dir: Path) -> HostRuntime:
    """``runtime`` once the bytecode of ``package_dir`` is cached for its python: every host tool and engine is a
    new process importing mockcloud, and the host's user may not write the cache itself (a root-owned checkout, the
    hostlib copy), which made each of them compile the modules again (half the mock cloud's CPU in a fleet)."""
    subprocess.run(
        [runtime.python, "-m", "compileall", "-q", "-j", "0", str(package_dir)],
        capture_output=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
    return runtime


def check_shims(runtime: HostRuntime, user: str | None) -> None:
    """Every shimmed tool must resolve to the shim for the host's user: a mock host never reaches a real docker,
    nvidia-smi, systemctl or apt-get (this machine may have them in /usr/local/bin or /usr/bin)."""
    script = 'for n in "$@"; do p=$(command -v "$n") || p="(not found)"; printf "%s %s\\n" "$n" "$p"; done'
    proc = subprocess.run(
        ["/bin/sh", "-c", script, "sh", *SHIMS],
        capture_output=True,
        text=True,
        env=runtime.env(Path("/")),
        user=user,
        cwd="/",
        timeout=30,
        check=False,
    )
    found = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    wrong = [f"{n} -> {found.get(n, '(no answer)')}" for n in SHIMS if found.get(n) != str(runtime.hostbin / n)]
    if proc.returncode != 0 or wrong:
        raise MockHostError(
            f"mock host tools do not resolve to the shims in {runtime.hostbin} for user {user or 'this user'}: "
            + ", ".join(wrong)
            + (f" ({proc.stderr.strip()})" if proc.stderr.strip() else "")
        )


# ---------------------------------------------------------------- the hosts


@dataclass(frozen=True)
class _Slot:
    name: str
    ipv4: str
    home: Path
    netns: str | None


class MockHosts:
    """Start/stop ``count`` mock hosts under ``root``; use as a context manager or call start()/stop()."""

    def __init__(
        self, root: Path, count: int, mode: HostMode = "auto", subnet: int | None = None, own_pids: bool = False
    ) -> None:
        """``own_pids``: each host in a PID namespace of its own (netns mode only; mockcloud/pid_init.py), so a
        tool that acts on every process it sees (`ray stop`) acts on that host's alone, as on a real server."""
        if not 1 <= count <= 250:
            raise ValueError(f"count must be 1..250, not {count}")
        if subnet is not None and not 0 <= subnet <= 255:
            raise ValueError(f"subnet must be 0..255, not {subnet}")
        self.root = Path(root).absolute()
        self.count = count
        self.mode = mode
        self.subnet = subnet
        self.own_pids = own_pids
        self.is_root = os.geteuid() == 0
        self.suffix = secrets.token_hex(3)
        self.user = LOGIN_USER_WHEN_ROOT if self.is_root else pwd.getpwuid(os.getuid()).pw_name
        self.mode_used: Literal["netns", "loopback"] | None = None
        self.runtime = HostRuntime(sys.executable, str(REPO_ROOT), HOSTBIN)  # host_runtime() decides in start()
        self.host_python = self.runtime.python
        self.hostbin = self.runtime.hostbin
        self.pythonpath = self.runtime.path
        self.hosts: list[MockHost] = []
        self._bridge: str | None = None
        self._namespaces: list[str] = []
        self._veths: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._homes: list[Path] = []

    def __enter__(self) -> MockHosts:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- start

    def start(self) -> list[MockHost]:
        """Create the network, each host's dir, keys and config, start every sshd and wait for its banner."""
        if self.hosts:
            return self.hosts
        if not Path(SSHD).exists():
            raise MockHostError(f"{SSHD} is missing: install openssh-server (apt-get install -y openssh-server)")
        self.root.mkdir(parents=True, exist_ok=True)
        if self.is_root:
            _ensure_login_user()
            if self.root.stat().st_uid == os.getuid():
                self.root.chmod(0o755)
            if not usable_by_others(self.root):
                raise MockHostError(
                    f"{self.root} is not reachable by the login user {self.user}: a parent directory is not "
                    "world-traversable (pytest's tmp_path is 0700); use mockcloud.hosts.new_root() instead"
                )
        self.runtime = host_runtime(self.root, other_user=self.is_root)
        check_shims(self.runtime, self.user if self.is_root else None)
        self.host_python, self.hostbin, self.pythonpath = self.runtime.python, self.runtime.hostbin, self.runtime.path
        from mockcloud.wheelhouse import ensure_wheelhouse

        wheelhouse = ensure_wheelhouse(self.root / "wheelhouse")
        try:
            with _setup_lock():
                slots, port = self._network_up()
                if self.own_pids and self.mode_used != "netns":
                    raise MockHostError("own_pids needs netns mode (root and the `ip` tool)")
                configs = [self._prepare_host(slot, port, wheelhouse) for slot in slots]
                for slot, (config, log) in zip(slots, configs, strict=True):
                    self._launch_sshd(slot, config, log)
                for slot, proc, (_, log) in zip(slots, self._procs, configs, strict=True):
                    _wait_for_banner(proc, slot.ipv4, port, log)
            pids = [_listener_pid(proc) if self.own_pids else proc.pid for proc in self._procs]
            self.hosts = [self._describe(slot, port, pid) for slot, pid in zip(slots, pids, strict=True)]
        except BaseException:
            self.stop()
            raise
        return self.hosts

    def _network_up(self) -> tuple[list[_Slot], int]:
        if self.mode in ("auto", "netns") and self.is_root and shutil.which("ip"):
            try:
                return self._netns_up(), 22
            except MockHostError:
                self._network_down([])
                if self.mode == "netns":
                    raise
        elif self.mode == "netns":
            raise MockHostError("netns mode needs root and the `ip` tool; use mode='loopback'")
        return self._loopback_pick()

    def _netns_up(self) -> list[_Slot]:
        used = {int(m) for m in re.findall(r"\b10\.200\.(\d+)\.", _run(["ip", "-o", "-4", "addr", "show"], "ip addr"))}
        if self.subnet is not None:
            if self.subnet in used:
                raise MockHostError(f"10.200.{self.subnet}.0/24 is already in use on this machine")
            subnet = self.subnet
        else:
            start = random.randrange(1, 255)
            free = [s for s in (*range(start, 255), *range(1, start)) if s not in used]
            if not free:
                raise MockHostError("no free 10.200.X.0/24 subnet for the mock hosts")
            subnet = free[0]
        first_ns = f"mc{self.suffix}-h1"
        _run(["ip", "netns", "add", first_ns], "ip netns add")
        self._namespaces.append(first_ns)
        bridge = f"mcbr{self.suffix}"
        _run(["ip", "link", "add", bridge, "type", "bridge"], "creating the bridge")
        self._bridge = bridge
        _run(["ip", "addr", "add", f"10.200.{subnet}.1/24", "dev", bridge], "addressing the bridge")
        _run(["ip", "link", "set", bridge, "up"], "bridge up")
        slots = []
        for i in range(1, self.count + 1):
            name, netns, veth = f"h{i}", f"mc{self.suffix}-h{i}", f"mcv{self.suffix}{i}"
            if netns not in self._namespaces:
                _run(["ip", "netns", "add", netns], "ip netns add")
                self._namespaces.append(netns)
            _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns], "veth")
            self._veths.append(veth)
            _run(["ip", "link", "set", veth, "master", bridge, "up"], "veth up")
            ipv4 = f"10.200.{subnet}.{i + 1}"
            _run(["ip", "-n", netns, "addr", "add", f"{ipv4}/24", "dev", "eth0"], "addressing the host")
            _run(["ip", "-n", netns, "link", "set", "eth0", "up"], "eth0 up")
            _run(["ip", "-n", netns, "link", "set", "lo", "up"], "lo up")
            slots.append(_Slot(name, ipv4, self.root / "hosts" / name, netns))
        self.mode_used = "netns"
        return slots

    def _loopback_pick(self) -> tuple[list[_Slot], int]:
        ports = [22, 2222, 2223, 2224] if self.is_root else [2222, 2223, 2224, 2225]
        blocks = [self.subnet] if self.subnet is not None else list(range(64))
        for port in ports:
            for block in blocks:
                ips = [f"127.0.{block}.{i + 1}" for i in range(1, self.count + 1)]
                if all(_port_free(ip, port) and _port_free(ip, 8000) for ip in ips):
                    self.mode_used = "loopback"
                    slots = [_Slot(f"h{i}", ip, self.root / "hosts" / f"h{i}", None) for i, ip in enumerate(ips, 1)]
                    return slots, port
        raise MockHostError(f"no free loopback addresses/ports for {self.count} mock hosts (tried ports {ports})")

    def _prepare_host(self, slot: _Slot, port: int, wheelhouse: Path) -> tuple[Path, Path]:
        home, ssh_dir = slot.home, slot.home / "ssh"
        self._homes.append(home)
        for folder in (home, ssh_dir, home / "run", home / "run" / "pids", home / "containers"):
            folder.mkdir(parents=True, exist_ok=True)
        key = ssh_dir / "ssh_host_ed25519_key"
        if not key.exists():
            _run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    f"mockhost-{slot.name}",
                    "-f",
                    str(key),
                ],
                "ssh-keygen",
            )
        (home / "authorized_keys").write_text("")
        (home / "authorized_keys").chmod(0o644)
        write_knobs(home / "knobs.json", dict(DEFAULT_KNOBS))
        # Commands start in the host's dir ($HOME); login shells (/etc/profile resets PATH) keep the shims.
        (home / ".bashrc").write_text('cd "$HOME" 2>/dev/null\n')
        shims = str(self.hostbin)
        (home / ".profile").write_text(
            f'case ":$PATH:" in *":{shims}:"*) ;; *) PATH="{shims}:$PATH" ;; esac\nexport PATH\n'
            '[ -n "$BASH_VERSION" ] && [ -f "$HOME/.bashrc" ] && . "$HOME/.bashrc"\n'
        )
        if self.is_root:
            user = pwd.getpwnam(self.user)
            for path in (home, home / "run", home / "run" / "pids", home / "containers"):
                os.chown(path, user.pw_uid, user.pw_gid)
        env = {
            **self.runtime.env(home),
            "MOCKHOST_IP": slot.ipv4,
            "MOCKHOST_NAME": slot.name,
            # The host's "PyPI" is a local simple index; an explicit --index-url (PyTorch's) replaces it.
            "PIP_INDEX_URL": f"file://{wheelhouse}/simple/",
            "PIP_CONFIG_FILE": os.devnull,  # this machine's pip.conf is not the host's
            "PIP_FIND_LINKS": str(wheelhouse),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        lines = [
            f"Port {port}",
            f"ListenAddress {slot.ipv4}",
            f"HostKey {_quote(str(key))}",
            "PidFile none",
            f"AuthorizedKeysFile {_quote(str(home / 'authorized_keys'))}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin no" if self.user != "root" else "PermitRootLogin prohibit-password",
            f"AllowUsers {self.user}",
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
        config, log = ssh_dir / "sshd_config", ssh_dir / "sshd.log"
        config.write_text("\n".join(lines) + "\n")
        check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise MockHostError(f"sshd -t rejected {config}:\n{check.stdout}{check.stderr}")
        return config, log

    def _launch_sshd(self, slot: _Slot, config: Path, log: Path) -> None:
        argv = [SSHD, "-D", "-e", "-f", str(config)]
        if slot.netns and self.own_pids:  # unshare stays the parent; --kill-child: the namespace goes with it
            init = [sys.executable, "-I", str(PACKAGE_DIR / "pid_init.py")]
            argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *init, *argv]
        if slot.netns:
            argv = ["ip", "netns", "exec", slot.netns, *argv]
        with open(log, "ab") as log_file:
            self._procs.append(
                subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
                )
            )

    def _describe(self, slot: _Slot, port: int, sshd_pid: int) -> MockHost:
        pub = (slot.home / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
        return MockHost(
            name=slot.name,
            ipv4=slot.ipv4,
            ssh_port=port,
            user=self.user,
            home=slot.home,
            authorized_keys=slot.home / "authorized_keys",
            host_key_pub=f"{pub[0]} {pub[1]}",
            knobs_file=slot.home / "knobs.json",
            poweroff=[sys.executable, str(PACKAGE_DIR / "hosts.py"), "poweroff", str(slot.home)],
            sshd_pid=sshd_pid,
            netns=slot.netns,
        )

    # -- stop

    def stop(self) -> None:
        """Kill everything the hosts started, then the sshds, then remove namespaces, veths and the bridge."""
        for home in self._homes:
            poweroff_host(home)
        for proc in self._procs:
            terminate_pids(_descendants(proc.pid), grace=2.0)
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        errors: list[str] = []
        self._network_down(errors)
        self._procs, self._homes, self.hosts = [], [], []
        if errors:
            raise MockHostError("mock host teardown incomplete:\n" + "\n".join(errors))

    def _network_down(self, errors: list[str]) -> None:
        for netns in self._namespaces:
            pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False)
            terminate_pids(int(p) for p in pids.stdout.split() if p.isdigit())
            gone = subprocess.run(["ip", "netns", "del", netns], capture_output=True, text=True, check=False)
            if gone.returncode != 0:
                errors.append(f"ip netns del {netns}: {gone.stderr.strip()}")
        for link in [*self._veths, *([self._bridge] if self._bridge else [])]:
            if Path(f"/sys/class/net/{link}").exists():
                gone = subprocess.run(["ip", "link", "del", link], capture_output=True, text=True, check=False)
                # A veth goes with its peer's netns, asynchronously: it may vanish between the check and the
                # delete ("Cannot find device" / "No such device"). Only a link that is still there is a leak.
                if gone.returncode != 0 and not _link_gone(link, within_s=5.0):
                    errors.append(f"ip link del {link}: {gone.stderr.strip()}")
        self._namespaces, self._veths, self._bridge = [], [], None


def _listener_pid(proc: subprocess.Popen[bytes]) -> int:
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


def _link_gone(link: str, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while Path(f"/sys/class/net/{link}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "poweroff":
        poweroff_host(Path(argv[1]))
        return 0
    sys.stderr.write("usage: hosts.py poweroff HOST_HOME\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
