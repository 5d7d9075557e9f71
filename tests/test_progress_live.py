"""Live progress on the mock cloud: SSH output streams line by line while the command runs (real sshd), a `--json`
deploy writes NDJSON events on stderr (every step in order, waits, streamed output, a summary equal to stdout's
document, no secret), and a redeploy on a terminal (a pty) shows the rich live display."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockcloud.cloud import MockCloud
from mockcloud.host_sshd import SSHD
from mockcloud.hosts import new_root
from mockcloud.upctl import read_state, set_faults
from orchestrator.actions import Connect
from orchestrator.errors import ProviderError
from orchestrator.playbook import load_playbook
from orchestrator.transports.local import run_local
from orchestrator.transports.ssh import SshSession
from tests.conftest import REPO, run_cli
from tests.test_e2e import write_config

API_KEY = "sk-progress-planted-key-5d1e"
HF = "hf_plantedProgressToken77"


@pytest.fixture(scope="module")
def cloud() -> Iterator[MockCloud]:
    if not Path(SSHD).exists():
        pytest.skip(f"{SSHD} missing: apt-get install openssh-server")
    root = new_root("orch-progress-")
    try:
        with MockCloud(root, hosts=1) as c:
            yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def deployed(cloud: MockCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A config and its environment; whatever the tests did, nothing is left billing afterwards."""
    tmp = tmp_path_factory.mktemp("progress")
    env = cloud.env() | {"ORCHESTRATOR_HOME": str(tmp / "home"), "VLLM_API_KEY": API_KEY, "HF_TOKEN": HF}
    set_faults(cloud.upctl_home)
    yield write_config(cloud, tmp, None, name="progress"), env
    run_cli("teardown", "progress", "--yes", env=env)
    servers = read_state(cloud.upctl_home).get("servers", {})
    for srv in list(servers.values() if isinstance(servers, dict) else servers):
        uuid = srv["uuid"] if isinstance(srv, dict) else srv
        subprocess.run(["upctl", "server", "delete", uuid, "--stop", "--delete-storages"], env=env, capture_output=True)


def test_ssh_output_arrives_before_the_command_exits(cloud: MockCloud) -> None:
    """The command waits for a file that only the callback creates, on its first line: buffered until exit,
    it would never finish (the run would time out)."""
    h = cloud.hosts[0]
    h.authorized_keys.write_text(cloud.client_key_pub + "\n")
    flag = h.home / "first-line-seen"  # the login user's home: the same directory here and on the mock host
    flag.unlink(missing_ok=True)
    seen: list[tuple[str, str]] = []

    def on_line(stream: str, line: str) -> None:
        seen.append((stream, line))
        if line == "first":
            flag.touch()

    s = SshSession()
    try:
        key = str(cloud.client_key)
        s.connect(Connect(h.ipv4, h.ssh_port, h.user, key, None, 20.0, public_key_file=f"{key}.pub"))
        command = f"echo first; echo oops >&2; while [ ! -e {flag} ]; do sleep 0.05; done; printf 'second\\rthird'"
        result = s.run(command, 30, on_line)
    finally:
        s.close()
    assert result.rc == 0 and result.stdout == "first\nsecond\rthird" and "oops" in result.stderr
    assert [x for x in seen if x[0] == "stdout"] == [("stdout", "first"), ("stdout", "second"), ("stdout", "third")]
    assert ("stderr", "oops") in seen


def test_local_stderr_lines_arrive_before_the_program_exits(tmp_path: Path) -> None:
    """As upctl's progress log: the program waits for a file only the callback creates on its first stderr line;
    stdout and all of stderr are still captured, and the exit code kept."""
    flag = tmp_path / "seen"
    script = f"echo '> Creating server web1' >&2; echo '{{\"uuid\": 1}}'; " \
             f"while [ ! -e {flag} ]; do sleep 0.05; done; echo '✓ Creating server web1' >&2; exit 3"  # fmt: skip
    seen: list[str] = []

    def on_line(line: str) -> None:
        seen.append(line)
        flag.touch()

    result = run_local(["sh", "-c", script], 30, on_stderr=on_line)
    assert result.rc == 3 and result.stdout == '{"uuid": 1}\n'
    assert seen == ["> Creating server web1", "✓ Creating server web1"]
    assert result.stderr == "> Creating server web1\n✓ Creating server web1\n"


def test_a_local_call_reads_its_pipes_in_the_calling_thread_as_text_mode_would() -> None:
    """No reader or timer thread per call (a fleet makes hundreds); the text as `text=True` gives it: CR LF and a
    lone CR end lines, UTF-8 (upctl's ✓) decoded, the exit code kept; stderr lines reach the callback as they come."""
    import threading

    before = threading.active_count()
    during: list[int] = []
    seen: list[str] = []

    def on_line(line: str) -> None:
        seen.append(line)
        during.append(threading.active_count())

    script = "printf 'a\\r\\nb\\rc'; printf '> Creating\\r\\n\\n\\342\\234\\223 done\\r' >&2; exit 7"
    result = run_local(["sh", "-c", script], 30, own_session=True, on_stderr=on_line)
    assert result.rc == 7 and result.stdout == "a\nb\nc"
    assert result.stderr == "> Creating\n\n✓ done\n" and seen == ["> Creating", "✓ done"]
    assert during and set(during) == {before}, (before, during)
    plain = run_local(["sh", "-c", "echo out; echo err >&2; exit 3"], 30)
    assert (plain.rc, plain.stdout, plain.stderr) == (3, "out\n", "err\n")


def test_a_local_call_without_a_pidfd_waits_for_the_exit_all_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the kernel or a sandbox gives no pidfd, the pipes' end and Popen.wait bound the call instead."""
    import orchestrator.transports.local as local

    monkeypatch.setattr(local, "_exit_fd", lambda pid: None)
    plain = run_local(["sh", "-c", "echo out; echo err >&2; exit 3"], 30)
    assert (plain.rc, plain.stdout, plain.stderr) == (3, "out\n", "err\n")
    with pytest.raises(ProviderError, match="did not finish within 1s"):
        run_local(["sh", "-c", "exec sleep 30"], 1)


def test_a_streamed_local_call_past_its_timeout_is_killed(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ProviderError, match="did not finish within 1s"):
        run_local(["sh", "-c", "echo '> Waiting' >&2; exec sleep 30"], 1, on_stderr=lambda _line: None)
    assert time.monotonic() - started < 15


def events_of(stderr: str) -> list[dict[str, object]]:
    events = [json.loads(line) for line in stderr.splitlines()]  # every stderr line is one JSON object
    assert all(isinstance(e, dict) and isinstance(e.get("ts"), float) for e in events)
    return events


def test_json_deploy_writes_ndjson_events(cloud: MockCloud, deployed: tuple[Path, dict[str, str]]) -> None:
    cfg, env = deployed
    cloud.hosts[0].reset_knobs()
    cloud.hosts[0].set_knobs(engine_startup_delay=2.0)  # the health step waits: connection refused meanwhile
    proc = run_cli("deploy", str(cfg), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert API_KEY not in proc.stderr + proc.stdout and HF not in proc.stderr + proc.stdout
    events = events_of(proc.stderr)
    kinds = [s.kind for s in load_playbook("deploy").steps]
    steps = [(e["event"], e["index"], e["kind"]) for e in events if e["event"] in ("step_started", "step_finished")]
    assert steps == [(ev, i, k) for i, k in enumerate(kinds, start=1) for ev in ("step_started", "step_finished")]
    assert all(e["total"] == len(kinds) for e in events if e["event"] == "step_started")
    assert all(e["status"] == "ok" for e in events if e["event"] == "step_finished")
    started = next(e for e in events if e["event"] == "step_started" and e["kind"] == "health")
    assert started["timeout"] == 45 * 60  # playbooks/deploy.yaml
    assert any(e["event"] == "action" and str(e["description"]).startswith("remote: ") for e in events)
    assert any(e["event"] == "output" for e in events)  # remote output, streamed
    created = [e for e in events if e["event"] == "output" and "Creating server progress" in str(e["line"])]
    assert created and {e["step"] for e in created} == {1}, created  # upctl's progress log, from provision
    waits = [e for e in events if e["event"] == "waiting"]
    assert waits and all(e["deadline"] == 60.0 for e in waits)  # engine.health.timeout
    assert any(str(e["reason"]).startswith("connection refused: still starting") for e in waits)
    assert events[-1]["event"] == "summary" and events[-1]["document"] == json.loads(proc.stdout)


def run_on_terminal(args: list[str], env: dict[str, str], timeout: float = 240) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pty (200 columns), as in a terminal; returns rc, the terminal's text, stdout."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=dict(os.environ) | env | {"TERM": "xterm-256color"},
        cwd=REPO,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer of the pty is gone
                break
            if not data:
                break
            chunks.append(data)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return rc, b"".join(chunks).decode(errors="replace"), out


def test_redeploy_on_a_terminal_shows_the_live_display(cloud: MockCloud, deployed: tuple[Path, dict[str, str]]) -> None:
    cfg, env = deployed
    cloud.hosts[0].set_knobs(engine_startup_delay=2.0)
    rc, screen, out = run_on_terminal(["redeploy", str(cfg)], env)
    assert rc == 0, screen
    assert "\x1b[" in screen  # drawn with terminal control sequences: the live region
    assert "start-engine  " in screen and " of 5m" in screen  # the running step, elapsed of its timeout
    assert "waiting: connection refused: still starting (model loading), " in screen and " of 1m" in screen
    assert "│ | Processes:" in screen  # remote output (nvidia-smi) as it arrives
    assert "start-engine: ok (" in screen and "health: ok (" in screen  # finished steps stay
    assert API_KEY not in screen
    assert "deployment progress is serving" in out  # the summary on stdout, untouched by the display
