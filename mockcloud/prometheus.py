"""A real Prometheus server for tests and the demo: started on loopback, queried over HTTP, stopped by PID."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType

BASE_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs: []
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """`prometheus` on 127.0.0.1:<port> with --web.enable-lifecycle, its config at ``config``."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.config = root / "prometheus.yml"
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("prometheus") is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.config.exists():
            self.config.write_text(BASE_CONFIG)
        log = open(self.root / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.root / 'prometheus.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("prometheus did not become ready in 20 s")

    def query(self, expr: str) -> list[dict[str, object]]:
        q = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=5) as resp:
            body = json.loads(resp.read())
        result = body.get("data", {}).get("result", [])
        return result if isinstance(result, list) else []

    def wait_up(self, job: str, timeout: float = 30.0) -> list[dict[str, object]]:
        """Wait until every target of ``job`` reports up == 1 (Prometheus waits ~5 s before a first scrape)."""
        deadline = time.monotonic() + timeout
        last: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            last = self.query(f'up{{job="{job}"}}')
            if last and all(str(r.get("value", [0, "0"])[1]) == "1" for r in last):  # type: ignore[index]
                return last
            time.sleep(0.5)
        raise TimeoutError(f"job {job} not up after {timeout:.0f}s: {last}")

    def wait_value(self, expr: str, at_least: float, timeout: float = 20.0) -> list[dict[str, object]]:
        """Wait until the first series of ``expr`` reaches ``at_least`` (a later scrape sees a fresh counter)."""
        deadline = time.monotonic() + timeout
        last: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            last = self.query(expr)
            if last and float(last[0].get("value", [0, "0"])[1]) >= at_least:  # type: ignore[index]
                return last
            time.sleep(0.5)
        raise TimeoutError(f"{expr} did not reach {at_least} within {timeout:.0f}s: {last}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
