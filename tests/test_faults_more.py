"""More fault injection on the mock cloud (API errors mid-deploy, teardown faults, host faults, interrupts).

Every scenario ends with check_invariant: the cloud holds exactly what local state tracks, orphans 0.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mockcloud.cloud import MockCloud
from mockcloud.upctl import read_state, set_faults
from mockcloud.upctl_world import World
from tests.conftest import REPO, run_cli
from tests.test_e2e import cloud, engine_processes, env, prom, write_config  # noqa: F401 - shared fixtures
from tests.test_faults import (
    _deploy_proc,
    check_invariant,
    cloud_uuids,
    read_deployment,
    scenario,  # noqa: F401 - shared fixture
    wait_for_state,
)

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")

Scenario = tuple[MockCloud, dict[str, str]]


def config(c: MockCloud, tmp_path: Path, name: str, sections: dict[str, dict[str, Any]], **engine: object) -> Path:
    """write_config, with some keys of other sections (provider, monitoring) replaced."""
    path = write_config(c, tmp_path, None, name=name, **engine)
    data = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        data[section].update(values)
    path.write_text(yaml.safe_dump(data))
    return path


def assert_clean_failure(stderr: str) -> None:
    assert not any(line.startswith("Traceback") for line in stderr.splitlines())
    assert "hint:" in stderr


def assert_tracked_server(c: MockCloud, e: dict[str, str], name: str) -> str:
    """Exactly one server exists and it is the one the deployment's state records."""
    doc = read_deployment(Path(e["ORCHESTRATOR_HOME"]), name)
    uuid = str((doc.get("server") or {}).get("uuid"))
    assert cloud_uuids(c) == {uuid}, f"cloud {cloud_uuids(c)} vs state {uuid}"
    return uuid


def unstick(c: MockCloud) -> None:
    """UpCloud finishes the maintenance at last: stuck servers come up (so teardown can stop them)."""
    with World(c.upctl_home).transaction() as state:
        for server in state["servers"]:
            if server.get("stuck"):
                server["stuck"], server["state"], server["pending"] = None, "started", None


# ------------------------------------------------------------------ API faults during deploy

FIVE_XX = "Internal server error (type=INTERNAL_ERROR, status=500)"
DEPLOY_FAULTS: list[tuple[str, dict[str, Any], dict[str, dict[str, Any]], int, str, bool]] = [
    # (name, upctl faults, config sections, exit code, words in stderr, server created and kept)
    ("server show 5xx once while waiting", {"fail": {"server show": {"times": 1}}}, {}, 0, "transient", True),
    (
        "server show 5xx keeps failing while waiting",
        {"fail": {"server show": {"times": 40}}},
        {},
        3,
        f"error: upctl server show failed: {FIVE_XX}",
        True,
    ),
    ("zone devices 5xx once", {"fail": {"zone devices": {"times": 1}}}, {}, 0, "transient", True),
    (
        "zone devices 5xx every time",
        {"fail": {"zone devices": {"times": 9}}},
        {},
        3,
        f"error: upctl zone devices failed: {FIVE_XX}",
        False,
    ),
    (
        "template list 5xx every time",
        {"fail": {"storage list": {"times": 9}}},
        {},
        3,
        f"error: upctl storage list failed: {FIVE_XX}",
        False,
    ),
    ("firewall rule create 5xx once", {"fail": {"server firewall create": {"times": 1}}}, {}, 0, "transient", True),
    (
        "firewall rule create 5xx every time",
        {"fail": {"server firewall create": {"times": 9}}},
        {},
        3,
        "firewall: FAILED",
        True,
    ),
    (
        "rate limited (429) once",
        {"fail": {"zone list": {"times": 1, "kind": "ratelimit"}}},
        {},
        0,
        "status=429) (transient; attempt 2 of 3)",
        True,
    ),
    (
        "rate limited (429) on every create",
        {"fail": {"server create": {"times": 9, "kind": "ratelimit"}}},
        {},
        3,
        "error: upctl server create failed: Too many requests (type=TOO_MANY_REQUESTS, status=429)",
        False,
    ),
    (
        "credentials rejected before create",
        {"fail": {"zone list": {"times": 1, "kind": "auth"}}},
        {},
        4,
        "error: UpCloud rejected the credentials\nhint: check UPCLOUD_TOKEN",
        False,
    ),
    (
        "credentials rejected after create (token revoked mid-deploy)",
        {"fail": {"server show": {"times": 1, "kind": "auth"}}},  # the first show after create: wait_started
        {},
        4,
        "error: UpCloud rejected the credentials\nhint: check UPCLOUD_TOKEN",
        True,
    ),
    (
        "server plans time out every time",
        {"fail": {"server plans": {"times": 9, "kind": "timeout", "timeout_seconds": 0.2}}},
        {},
        3,
        "context deadline exceeded (Client.Timeout exceeded while awaiting headers)\nhint: a temporary API",
        False,
    ),
    (
        "server stuck in maintenance",
        {"stuck_state": "maintenance"},
        {"provider": {"wait_started": "2s"}},
        3,
        "is still 'maintenance' after 2s",
        True,
    ),
]


@pytest.mark.parametrize(
    "name, faults, sections, code, words, created", DEPLOY_FAULTS, ids=[f[0] for f in DEPLOY_FAULTS]
)
def test_api_faults_during_deploy(
    scenario: Scenario,  # noqa: F811
    tmp_path: Path,
    name: str,
    faults: dict[str, Any],
    sections: dict[str, dict[str, Any]],
    code: int,
    words: str,
    created: bool,
) -> None:
    c, e = scenario
    set_faults(c.upctl_home, **faults)
    proc = run_cli("deploy", str(config(c, tmp_path, "apifault", sections)), env=e)
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr
    if code:
        assert_clean_failure(proc.stderr)
    if created:
        assert_tracked_server(c, e, "apifault")
    else:
        assert cloud_uuids(c) == set(), "nothing may be created when the failure comes before create"
    check_invariant(name, c, e)
    unstick(c)


# ------------------------------------------------------------------ host faults

HOST_MORE = [
    ("engine KV cache too small", {"engine_fail": "kv_cache"}, {}, 8, "Lower --max-model-len"),
    ("two GPUs where the plan has one", {"gpu_count": 2}, {}, 6, "nvidia-smi lists 2"),
    ("wrong GPU model", {"gpu_name": "NVIDIA L4"}, {}, 6, "but the server has NVIDIA L4"),
    (
        "engine /health keeps answering 503",
        {"engine_health_fail_after": 0},
        {"health": {"timeout": "3s", "interval": "0.3s"}},
        8,
        '"GET /health HTTP/1.1" 503',
    ),
]


@pytest.mark.parametrize("name, knobs, engine, code, words", HOST_MORE, ids=[f[0] for f in HOST_MORE])
def test_more_host_faults(
    scenario: Scenario,  # noqa: F811
    tmp_path: Path,
    name: str,
    knobs: dict[str, Any],
    engine: dict[str, Any],
    code: int,
    words: str,
) -> None:
    c, e = scenario
    for h in c.hosts:
        h.set_knobs(**knobs)
    proc = run_cli("deploy", str(write_config(c, tmp_path, None, name="hostmore", **engine)), env=e)
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr
    assert "KEPT for debugging" in proc.stderr and "orchestrator teardown hostmore --yes" in proc.stderr
    assert_tracked_server(c, e, "hostmore")
    check_invariant(name, c, e)


def test_engine_killed_during_health(scenario: Scenario, tmp_path: Path) -> None:  # noqa: F811
    """The engine process dies while the health step waits for it: exit 8 at once, not after the timeout."""
    c, e = scenario
    for h in c.hosts:
        h.set_knobs(engine_startup_delay=120)
    cfg = write_config(c, tmp_path, None, name="killed", health={"timeout": "10m", "interval": "0.3s"})
    p = _deploy_proc(cfg, e)
    wait_for_state(
        Path(e["ORCHESTRATOR_HOME"]),
        "killed",
        lambda d: (d.get("steps") or {}).get("start-engine", {}).get("status") == "ok" and bool(engine_processes(c)),
        p,
    )
    for pid in engine_processes(c):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 8, err
    assert "health: FAILED" in err and "KEPT for debugging" in err
    assert_clean_failure(err)
    assert_tracked_server(c, e, "killed")
    check_invariant("engine killed during health", c, e)


# ------------------------------------------------------------------ faults during teardown

TEARDOWN_FAULTS: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "stop --wait times out in teardown (exit 0, still stopping)",
        {"wait_timeout": True, "boot_polls": 2},
        0,
        "and its storages deleted (confirmed)",
    ),
    ("server delete 5xx once in teardown", {"fail": {"server delete": {"times": 1}}}, 0, "transient"),
    (
        "server stop keeps failing in teardown",
        {"fail": {"server stop": {"times": 9}}},
        10,
        f"still exists (billing); teardown incomplete: upctl server stop failed: {FIVE_XX}\n",
    ),
    (
        "credentials rejected in teardown",
        {"fail": {"server stop": {"times": 1, "kind": "auth"}}},
        10,
        "still exists (billing); teardown incomplete: UpCloud rejected the credentials\n",
    ),
]


@pytest.mark.parametrize("name, faults, code, words", TEARDOWN_FAULTS, ids=[f[0] for f in TEARDOWN_FAULTS])
def test_faults_during_teardown(
    scenario: Scenario,  # noqa: F811
    tmp_path: Path,
    name: str,
    faults: dict[str, Any],
    code: int,
    words: str,
) -> None:
    c, e = scenario
    deployed = run_cli("deploy", str(write_config(c, tmp_path, None, name="down")), env=e)
    assert deployed.returncode == 0, deployed.stderr
    uuid = assert_tracked_server(c, e, "down")
    set_faults(c.upctl_home, **faults)
    proc = run_cli("teardown", "down", "--yes", env=e)
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr
    if code:
        assert f"{uuid} still exists" in proc.stderr
        assert_tracked_server(c, e, "down")
    else:
        assert cloud_uuids(c) == set() and read_deployment(Path(e["ORCHESTRATOR_HOME"]), "down") == {}
    check_invariant(name, c, e)


# ------------------------------------------------------------------ interrupts at known points


def _servers(c: MockCloud) -> list[dict[str, Any]]:
    servers = read_state(c.upctl_home).get("servers") or []
    return [s for s in servers if isinstance(s, dict)]


def wait_for_cloud(c: MockCloud, ready: Callable[[list[dict[str, Any]]], bool], proc: subprocess.Popen[str]) -> None:
    """Block until the fake cloud's world satisfies `ready` (e.g. upctl has created the server), or fail."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if ready(_servers(c)):
            return
        if proc.poll() is not None:
            err = proc.communicate()[1]
            pytest.fail(f"the command ended (exit {proc.returncode}) before the awaited point:\n{err}")
        time.sleep(0.05)
    pytest.fail("the awaited point was never reached")


def test_sigterm_while_upctl_creates_the_server(scenario: Scenario, tmp_path: Path) -> None:  # noqa: F811
    """SIGTERM while `server create --wait` runs: upctl is let finish, the server recorded, then exit 130."""
    c, e = scenario
    set_faults(c.upctl_home, wait_seconds=3)
    cfg = write_config(c, tmp_path, None, name="midcreate")
    p = _deploy_proc(cfg, e)
    wait_for_cloud(c, lambda servers: len(servers) == 1, p)  # the API accepted the create; upctl still waits
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "letting the cloud call finish and recording it first" in err
    assert "interrupted during step provision" in err and f"resume: orchestrator deploy {cfg}" in err
    assert_tracked_server(c, e, "midcreate")
    check_invariant("SIGTERM while upctl creates the server", c, e)


def test_sigint_while_teardown_stops_the_server(scenario: Scenario, tmp_path: Path) -> None:  # noqa: F811
    """Ctrl-C while teardown's `server stop --wait` runs: exit 130, the server still tracked; teardown again works."""
    c, e = scenario
    deployed = run_cli("deploy", str(write_config(c, tmp_path, None, name="midstop")), env=e)
    assert deployed.returncode == 0, deployed.stderr
    uuid = assert_tracked_server(c, e, "midstop")
    set_faults(c.upctl_home, wait_seconds=3)
    p = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "teardown", "midstop", "--yes"],
        env=e,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    wait_for_cloud(c, lambda servers: any(s["uuid"] == uuid and s["state"] == "stopped" for s in servers), p)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "interrupted during step destroy-server" in err
    assert_tracked_server(c, e, "midstop")
    check_invariant("SIGINT while teardown stops the server", c, e)
    set_faults(c.upctl_home)
    again = run_cli("teardown", "midstop", "--yes", env=e)
    assert again.returncode == 0, again.stderr
    assert cloud_uuids(c) == set()


# ------------------------------------------------------------------ monitoring


@contextlib.contextmanager
def prometheus_down() -> Iterator[tuple[str, Callable[[], None]]]:
    """A reload URL whose port refuses connections until `come_back()` makes it answer 200."""

    class Reload(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    server = http.server.HTTPServer(("127.0.0.1", 0), Reload, bind_and_activate=False)
    server.server_bind()  # bound but not listening: connections are refused
    thread = threading.Thread(target=server.serve_forever, daemon=True)

    def come_back() -> None:
        server.server_activate()
        thread.start()

    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/-/reload", come_back
    finally:
        if thread.is_alive():
            server.shutdown()
        server.server_close()


def test_prometheus_reload_url_down(scenario: Scenario, tmp_path: Path) -> None:  # noqa: F811
    c, e = scenario
    with prometheus_down() as (url, come_back):
        proc = run_cli("deploy", str(config(c, tmp_path, "noreload", {"monitoring": {"reload_url": url}})), env=e)
        assert proc.returncode == 9, proc.stderr
        error = proc.stderr.split("error: ", 1)[1].split("\n", 1)[0]
        assert error.startswith(f"Prometheus reload failed: POST {url}: connection refused: Prometheus is not"), error
        assert "engine" not in error  # the engine serves; Prometheus is what does not answer
        assert_clean_failure(proc.stderr)
        assert_tracked_server(c, e, "noreload")
        check_invariant("Prometheus reload URL down", c, e)
        come_back()
        down = run_cli("teardown", "noreload", "--yes", env=e)
        assert down.returncode == 0, down.stderr


def test_teardown_waits_out_maintenance(scenario: Scenario, tmp_path: Path) -> None:  # noqa: F811
    """A server still in 'maintenance' cannot be stopped (UpCloud refuses): teardown waits until maintenance ends
    (bounded), then stops and deletes it, instead of failing with the server left billing."""
    c, e = scenario
    set_faults(c.upctl_home, stuck_state="maintenance")
    proc = run_cli("deploy", str(config(c, tmp_path, "maint", {"provider": {"wait_started": "2s"}})), env=e)
    assert proc.returncode == 3 and "is still 'maintenance' after 2s" in proc.stderr, proc.stderr
    set_faults(c.upctl_home)
    with World(c.upctl_home).transaction() as state:  # maintenance ends after three more polls
        for server in state["servers"]:
            server["stuck"], server["pending"] = None, {"to": "started", "polls": 3}
    down = run_cli("teardown", "maint", "--yes", env=e)
    assert down.returncode == 0, down.stderr
    assert "is in 'maintenance': waiting for it to end before stopping it" in down.stderr
    assert cloud_uuids(c) == set()
    check_invariant("teardown of a server still in maintenance", c, e)
