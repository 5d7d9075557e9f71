"""MockCloud: the mock hosts plus the fake upctl's world and a client key, ready for the orchestrator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from mockcloud.host_errors import MockHostError
from mockcloud.host_network import HostMode
from mockcloud.host_runtime import PACKAGE_DIR
from mockcloud.hostbase import poweroff_host
from mockcloud.hosts import MockHost, MockHosts

UPCTL_BIN = PACKAGE_DIR / "bin"
MOCK_TOKEN = "mock-token"


class MockCloud:
    """Start ``hosts`` mock hosts under ``root``; list them for the fake upctl in root/upctl/hosts.json."""

    def __init__(self, root: Path, hosts: int = 2, mode: HostMode = "auto", own_pids: bool = False) -> None:
        self.root = Path(root).absolute()
        self.upctl_home = self.root / "upctl"
        self.client_key = self.root / "client_key"
        self._hosts = MockHosts(self.root, hosts, mode=mode, own_pids=own_pids)

    def __enter__(self) -> MockCloud:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def hosts(self) -> list[MockHost]:
        return self._hosts.hosts

    @property
    def mock_hosts(self) -> MockHosts:
        return self._hosts

    @property
    def ssh_port(self) -> int:
        return self._started().ssh_port

    @property
    def user(self) -> str:
        return self._hosts.user

    @property
    def client_key_pub(self) -> str:
        return Path(f"{self.client_key}.pub").read_text().strip()

    def _started(self) -> MockHost:
        if not self._hosts.hosts:
            raise MockHostError("MockCloud is not started")
        return self._hosts.hosts[0]

    def start(self) -> list[MockHost]:
        """Start the hosts, write the fake upctl's host list and make the client key pair (ed25519, 0600)."""
        self.root.mkdir(parents=True, exist_ok=True)
        hosts = self._hosts.start()
        try:
            self.upctl_home.mkdir(parents=True, exist_ok=True)
            described = [
                {
                    "ipv4": h.ipv4,
                    "authorized_keys": str(h.authorized_keys),
                    "poweroff": h.poweroff,
                    "name": h.name,
                    "ssh_port": h.ssh_port,
                    "user": h.user,
                    "host_key_pub": h.host_key_pub,
                    "knobs_file": str(h.knobs_file),
                    "netns": h.netns,
                }
                for h in hosts
            ]
            listing = self.upctl_home / "hosts.json"
            tmp = listing.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(described, indent=2) + "\n")
            tmp.replace(listing)
            if not self.client_key.exists():
                subprocess.run(
                    [
                        "ssh-keygen",
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-C",
                        "mockcloud-client",
                        "-f",
                        str(self.client_key),
                    ],
                    check=True,
                    capture_output=True,
                )
            self.client_key.chmod(0o600)
        except BaseException:
            self.stop()
            raise
        return hosts

    def stop(self) -> None:
        """Power off every host (engines, containers) and stop the hosts; safe to call twice."""
        homes = [h.home for h in self._hosts.hosts]
        try:
            self._hosts.stop()
        finally:
            for home in homes:
                poweroff_host(home)

    def env(self) -> dict[str, str]:
        """The orchestrator's environment: the fake upctl first on PATH, a mock token, no real credentials."""
        env = {k: v for k, v in os.environ.items() if k not in ("UPCLOUD_USERNAME", "UPCLOUD_PASSWORD")}
        env.update(
            PATH=f"{UPCTL_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}",
            MOCKCLOUD_PYTHON=sys.executable,
            FAKE_UPCTL_HOME=str(self.upctl_home),
            UPCLOUD_TOKEN=MOCK_TOKEN,
        )
        return env
