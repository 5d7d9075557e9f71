"""entry.main keeps two optional imports of the network libraries out of every command: httpx's own command-line
client (click, rich, pygments) and paramiko's invoke (for ssh_config `Match exec`, which the orchestrator never
uses); both libraries still work without them. The end-to-end tests run real SSH and HTTP through this entry."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

# `--version` returns from entry.main at once: what it set up before that is what every command runs with.
CODE = """
import json, sys
sys.argv = ["orchestrator", "--version"]
from orchestrator.entry import main
main()
import httpx, paramiko
conf = paramiko.SSHConfig.from_text("Host gpu\\n  HostName 10.0.0.7\\n  User ml\\n").lookup("gpu")
with httpx.Client(trust_env=False) as client:
    agent = client.headers["user-agent"]
loaded = sorted(m for m in ("invoke", "httpx._main", "click", "pygments") if sys.modules.get(m) is not None)
print(json.dumps({"loaded": loaded, "host": conf["hostname"], "user": conf["user"], "agent": agent}))
"""


def test_entry_skips_unused_imports_and_the_libraries_still_work() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CODE], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["loaded"] == []
    assert (out["host"], out["user"]) == ("10.0.0.7", "ml")
    assert out["agent"].startswith("python-httpx/")


def test_without_entry_paramiko_would_load_invoke() -> None:
    """The check above means something: imported plainly, paramiko brings invoke in (its dependency)."""
    code = "import sys, paramiko; print('invoke' in sys.modules and sys.modules['invoke'] is not None)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "True"
