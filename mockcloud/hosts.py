"""Mock GPU hosts: one real OpenSSH sshd per host, in its own network namespace or on a loopback address."""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

if not __package__:  # run as a script (a host's `poweroff` argv): the checkout joins the import path
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from mockcloud.host_errors import MockHostError, run_setup  # noqa: E402
from mockcloud.host_network import HostMode, HostNetwork, Slot, setup_lock  # noqa: E402
from mockcloud.host_runtime import (  # noqa: E402
    HOSTBIN,
    LOGIN_USER_WHEN_ROOT,
    PACKAGE_DIR,
    REPO_ROOT,
    HostRuntime,
    check_shims,
    ensure_login_user,
    host_runtime,
    usable_by_others,
)
from mockcloud.host_sshd import SSHD, launch_sshd, listener_pid, wait_for_banner, write_sshd_config  # noqa: E402
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


def new_root(prefix: str = "mockcloud-") -> Path:
    """A new world-traversable dir in /tmp for MockHosts (pytest's tmp_path is 0700: gpuops can't enter)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    return root


# ---------------------------------------------------------------- the hosts


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
        self.runtime = HostRuntime(sys.executable, str(REPO_ROOT), HOSTBIN)  # host_runtime() decides in start()
        self.host_python = self.runtime.python
        self.hostbin = self.runtime.hostbin
        self.pythonpath = self.runtime.path
        self.hosts: list[MockHost] = []
        self.network = HostNetwork(self.root, count, mode, subnet, self.is_root, self.suffix)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._homes: list[Path] = []

    @property
    def mode_used(self) -> Literal["netns", "loopback"] | None:
        """How the hosts got their addresses, once started."""
        return self.network.mode_used

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
            ensure_login_user()
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
            with setup_lock():
                slots, port = self.network.up()
                if self.own_pids and self.mode_used != "netns":
                    raise MockHostError("own_pids needs netns mode (root and the `ip` tool)")
                configs = [self._prepare_host(slot, port, wheelhouse) for slot in slots]
                for slot, (config, log) in zip(slots, configs, strict=True):
                    self._procs.append(launch_sshd(config, log, slot.netns, self.own_pids))
                for slot, proc, (_, log) in zip(slots, self._procs, configs, strict=True):
                    wait_for_banner(proc, slot.ipv4, port, log)
            pids = [listener_pid(proc) if self.own_pids else proc.pid for proc in self._procs]
            self.hosts = [self._describe(slot, port, pid) for slot, pid in zip(slots, pids, strict=True)]
        except BaseException:
            self.stop()
            raise
        return self.hosts

    def _prepare_host(self, slot: Slot, port: int, wheelhouse: Path) -> tuple[Path, Path]:
        home, ssh_dir = slot.home, slot.home / "ssh"
        self._homes.append(home)
        for folder in (home, ssh_dir, home / "run", home / "run" / "pids", home / "containers"):
            folder.mkdir(parents=True, exist_ok=True)
        key = ssh_dir / "ssh_host_ed25519_key"
        if not key.exists():
            run_setup(
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
        config, log = ssh_dir / "sshd_config", ssh_dir / "sshd.log"
        write_sshd_config(config, port=port, ipv4=slot.ipv4, key=key, home=home, user=self.user, env=env)
        return config, log

    def _describe(self, slot: Slot, port: int, sshd_pid: int) -> MockHost:
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
        self.network.down(errors)
        self._procs, self._homes, self.hosts = [], [], []
        if errors:
            raise MockHostError("mock host teardown incomplete:\n" + "\n".join(errors))


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "poweroff":
        poweroff_host(Path(argv[1]))
        return 0
    sys.stderr.write("usage: hosts.py poweroff HOST_HOME\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
