"""`make demo`, the README's first command: the demo itself, end to end on the mock cloud (deploy, status, a real
completion, Prometheus scraping when it is installed, teardown, nothing left), as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mockcloud.host_sshd import SSHD
from tests.conftest import REPO


def test_make_demo_deploys_serves_and_tears_down(tmp_path: Path) -> None:
    if not Path(SSHD).exists():
        pytest.skip(f"{SSHD} missing: apt-get install openssh-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPCLOUD_", "ORCHESTRATOR_"))}
    env["MOCKCLOUD_DEMO_DIR"] = str(tmp_path / "demo")
    proc = subprocess.run(
        [sys.executable, "-m", "mockcloud.demo"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "=== demo finished: nothing left running" in out, out
    assert "deployment demo is serving" in out, out
    assert "completion: '" in out and "servers left in the mock cloud: 0" in out, out
    if "Prometheus http://" in out:  # installed (CI installs it): the job was scraped through the written config
        assert 'up{job="orchestrator-demo"} = 1 for [' in out, out
    assert "demo-key-" not in out + proc.stderr  # the API key never printed
