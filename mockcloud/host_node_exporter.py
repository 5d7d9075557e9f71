"""The prometheus-node-exporter service on a mock host: its stand-in (mockcloud/engine_node.py) started, stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mockcloud import hoststate as hs

NODE_EXPORTER = "prometheus-node-exporter"  # package and systemd unit (mockcloud/engine_node.py serves :9100)
NODE_PID = "node-exporter.pid"


def node_exporter_pid(home: Path) -> int | None:
    """The running stand-in's pid (None when it is not running)."""
    try:
        pid = int((home / "run" / NODE_PID).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start_node_exporter(home: Path) -> None:
    """systemd starting prometheus-node-exporter.service: the stand-in, once, with the host's environment."""
    if node_exporter_pid(home) is not None:
        return
    (home / "run").mkdir(parents=True, exist_ok=True)
    with open(home / "run" / "node-exporter.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mockcloud.engine_node"],
            env=dict(os.environ, MOCKHOST_HOME=str(home)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (home / "run" / NODE_PID).write_text(str(proc.pid))


def stop_node_exporter(home: Path) -> None:
    pid = node_exporter_pid(home)
    if pid is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if node_exporter_pid(home) is None:
                break
            time.sleep(0.05)
    with contextlib.suppress(OSError):
        (home / "run" / NODE_PID).unlink()


def node_exporter_installed(home: Path) -> bool:
    return NODE_EXPORTER in hs.packages(hs.load(home))
