"""Mock GPU hosts: their addresses (a bridge and one network namespace per host, or loopback) and the setup lock."""

from __future__ import annotations

import contextlib
import random
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mockcloud.host_errors import MockHostError, run_setup
from mockcloud.hostbase import terminate_pids

HostMode = Literal["auto", "netns", "loopback"]

_LOCK_NAME = b"\0mockcloud-hosts-setup"  # abstract unix socket: a lock that vanishes with its holder


@contextlib.contextmanager
def setup_lock(timeout: float = 60.0) -> Iterator[None]:
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


def _port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def _link_gone(link: str, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while Path(f"/sys/class/net/{link}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass(frozen=True)
class Slot:
    name: str
    ipv4: str
    home: Path
    netns: str | None


@dataclass
class HostNetwork:
    """The network of one MockHosts run: what it made (namespaces, veths, bridge) and which mode it got."""

    root: Path
    count: int
    mode: HostMode
    subnet: int | None
    is_root: bool
    suffix: str
    mode_used: Literal["netns", "loopback"] | None = field(default=None, init=False)
    _bridge: str | None = field(default=None, init=False)
    _namespaces: list[str] = field(default_factory=list, init=False)
    _veths: list[str] = field(default_factory=list, init=False)

    def up(self) -> tuple[list[Slot], int]:
        """The hosts' slots and their sshd port: netns when asked for (or auto, as root with `ip`), else loopback."""
        if self.mode in ("auto", "netns") and self.is_root and shutil.which("ip"):
            try:
                return self._netns_up(), 22
            except MockHostError:
                self.down([])
                if self.mode == "netns":
                    raise
        elif self.mode == "netns":
            raise MockHostError("netns mode needs root and the `ip` tool; use mode='loopback'")
        return self._loopback_pick()

    def _netns_up(self) -> list[Slot]:
        used = {
            int(m) for m in re.findall(r"\b10\.200\.(\d+)\.", run_setup(["ip", "-o", "-4", "addr", "show"], "ip addr"))
        }
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
        run_setup(["ip", "netns", "add", first_ns], "ip netns add")
        self._namespaces.append(first_ns)
        bridge = f"mcbr{self.suffix}"
        run_setup(["ip", "link", "add", bridge, "type", "bridge"], "creating the bridge")
        self._bridge = bridge
        run_setup(["ip", "addr", "add", f"10.200.{subnet}.1/24", "dev", bridge], "addressing the bridge")
        run_setup(["ip", "link", "set", bridge, "up"], "bridge up")
        slots = []
        for i in range(1, self.count + 1):
            name, netns, veth = f"h{i}", f"mc{self.suffix}-h{i}", f"mcv{self.suffix}{i}"
            if netns not in self._namespaces:
                run_setup(["ip", "netns", "add", netns], "ip netns add")
                self._namespaces.append(netns)
            run_setup(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns], "veth")
            self._veths.append(veth)
            run_setup(["ip", "link", "set", veth, "master", bridge, "up"], "veth up")
            ipv4 = f"10.200.{subnet}.{i + 1}"
            run_setup(["ip", "-n", netns, "addr", "add", f"{ipv4}/24", "dev", "eth0"], "addressing the host")
            run_setup(["ip", "-n", netns, "link", "set", "eth0", "up"], "eth0 up")
            run_setup(["ip", "-n", netns, "link", "set", "lo", "up"], "lo up")
            slots.append(Slot(name, ipv4, self.root / "hosts" / name, netns))
        self.mode_used = "netns"
        return slots

    def _loopback_pick(self) -> tuple[list[Slot], int]:
        ports = [22, 2222, 2223, 2224] if self.is_root else [2222, 2223, 2224, 2225]
        blocks = [self.subnet] if self.subnet is not None else list(range(64))
        for port in ports:
            for block in blocks:
                ips = [f"127.0.{block}.{i + 1}" for i in range(1, self.count + 1)]
                if all(_port_free(ip, port) and _port_free(ip, 8000) for ip in ips):
                    self.mode_used = "loopback"
                    slots = [Slot(f"h{i}", ip, self.root / "hosts" / f"h{i}", None) for i, ip in enumerate(ips, 1)]
                    return slots, port
        raise MockHostError(f"no free loopback addresses/ports for {self.count} mock hosts (tried ports {ports})")

    def down(self, errors: list[str]) -> None:
        """Kill what runs in each namespace, remove the namespaces, veths and bridge; what stays is in ``errors``."""
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
