"""Teardown that cannot be blocked: whatever fails locally, the cloud ends up empty; what remains is named (exit 10).

Fault scenarios on the mock cloud (real sshd per host, fake upctl), each ending with the invariant check.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mockcloud.cloud import MockCloud
from mockcloud.hosts import new_root
from mockcloud.upctl import set_faults
from tests.conftest import run_cli
from tests.test_e2e import cloud, engine_processes, env, prom, write_config  # noqa: F401 - shared fixtures
from tests.test_faults import _process_tree, check_invariant, cloud_uuids, scenario  # noqa: F401

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")


def _deployed(c: MockCloud, tmp_path: Path, e: dict[str, str], name: str, **monitoring: object) -> Path:
    cfg = write_config(c, tmp_path, None, name=name)
    if monitoring:
        data = yaml.safe_load(cfg.read_text())
        data["monitoring"].update(monitoring)
        cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("deploy", str(cfg), env=e)
    assert proc.returncode == 0, proc.stderr
    return cfg


def _record(e: dict[str, str], name: str) -> Path:
    return Path(e["ORCHESTRATOR_HOME"]) / "deployments" / f"{name}.json"


def test_teardown_with_a_broken_prometheus_yml(scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path) -> None:
    c, e = scenario
    _deployed(c, tmp_path, e, "brokenprom")
    prom_cfg = tmp_path / "prom" / "prometheus.yml"
    good = prom_cfg.read_text()
    assert "job_name: orchestrator-brokenprom" in good
    prom_cfg.write_text(good.replace("scrape_configs:", "scrape_configs: [", 1))  # someone's bad edit
    proc = run_cli("teardown", "brokenprom", "--yes", env=e)
    assert proc.returncode == 10, proc.stderr
    assert cloud_uuids(c) == set(), "a broken prometheus.yml must not keep the server billing"
    assert f"error: server deleted; teardown incomplete: unmonitor: scrape job orchestrator-brokenprom is still in " \
           f"{prom_cfg}: existing Prometheus config is not valid YAML" in proc.stderr
    kept = json.loads(_record(e, "brokenprom").read_text())
    assert kept["server"] is None and kept["monitoring"]["job"] == "orchestrator-brokenprom"
    check_invariant("teardown with a broken prometheus.yml", c, e)

    prom_cfg.write_text(good)  # fixed: a second teardown finishes the job and forgets the deployment
    again = run_cli("teardown", "brokenprom", "--yes", env=e)
    assert again.returncode == 0, again.stderr
    assert "orchestrator-brokenprom" not in prom_cfg.read_text()
    assert not _record(e, "brokenprom").exists()


def test_teardown_with_the_ssh_host_down(tmp_path: Path) -> None:
    root = new_root("orch-sshdown-")
    try:
        with MockCloud(root, hosts=1) as c:
            e = c.env() | {"ORCHESTRATOR_HOME": str(tmp_path / "home")}
            _deployed(c, tmp_path, e, "sshdown")
            for pid in _process_tree(c.hosts[0].sshd_pid):  # the listener and every open session
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc = run_cli("teardown", "sshdown", "--yes", env=e)
            assert proc.returncode == 0, proc.stderr  # nothing remains: the engine died with the server
            assert "could not stop the engine cleanly" in proc.stderr
            assert cloud_uuids(c) == set()
            assert not _record(e, "sshdown").exists()
            assert "orchestrator-sshdown" not in (tmp_path / "prom" / "prometheus.yml").read_text()
            check_invariant("teardown with the SSH host down", c, e)
    finally:
        shutil.rmtree(root, ignore_errors=True)


class _Reload(http.server.BaseHTTPRequestHandler):
    status = 200
    hits: list[int] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        type(self).hits.append(type(self).status)
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def reload_server() -> Iterator[tuple[str, type[_Reload]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Reload)
    _Reload.status, _Reload.hits = 200, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/-/reload", _Reload
    finally:
        server.shutdown()
        server.server_close()


def test_teardown_when_the_prometheus_reload_fails(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path, reload_server: tuple[str, type[_Reload]]
) -> None:
    c, e = scenario
    url, handler = reload_server
    cfg = _deployed(c, tmp_path, e, "noreload", reload_url=url)
    assert handler.hits == [200]
    handler.status = 503  # Prometheus is having a bad moment
    proc = run_cli("teardown", str(cfg), "--yes", env=e)
    assert proc.returncode == 10, proc.stderr
    assert cloud_uuids(c) == set()
    prom_cfg = tmp_path / "prom" / "prometheus.yml"
    assert f"server deleted; teardown incomplete: unmonitor: job orchestrator-noreload is out of {prom_cfg}, but " \
           "Prometheus still scrapes it until it reloads: Prometheus reload failed" in proc.stderr
    assert "orchestrator-noreload" not in (tmp_path / "prom" / "prometheus.yml").read_text()
    check_invariant("teardown when the Prometheus reload fails", c, e)
    handler.status = 200
    again = run_cli("teardown", str(cfg), "--yes", env=e)
    assert again.returncode == 0, again.stderr
    assert handler.hits == [200, 503, 200]  # the re-run reloaded, so Prometheus forgets the job
    assert not _record(e, "noreload").exists()


def test_teardown_with_a_dead_engine(scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path) -> None:
    c, e = scenario
    _deployed(c, tmp_path, e, "deadengine")
    pids = engine_processes(c)
    assert pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc = run_cli("teardown", "deadengine", "--yes", env=e)
    assert proc.returncode == 0, proc.stderr
    assert "stop-engine: ok" in proc.stderr and cloud_uuids(c) == set()
    assert not _record(e, "deadengine").exists()
    check_invariant("teardown with a dead engine", c, e)


def test_server_in_error_state_stops_the_wait_at_once(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path
) -> None:
    c, e = scenario
    set_faults(c.upctl_home, stuck_state="error")
    proc = run_cli("deploy", str(write_config(c, tmp_path, None, name="inerror")), env=e)
    assert proc.returncode == 3, proc.stderr
    assert "is in state 'error' (a problem on UpCloud's side) instead of 'started'" in proc.stderr
    assert "after 900s" not in proc.stderr
    check_invariant("server in state 'error' while starting", c, e)
    set_faults(c.upctl_home)
    down = run_cli("teardown", "inerror", "--yes", env=e)  # a server in 'error' is deleted without a stop
    assert down.returncode == 0, down.stderr
    assert cloud_uuids(c) == set()


def test_server_that_goes_to_error_while_stopping_is_deleted_at_once(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path
) -> None:
    c, e = scenario
    _deployed(c, tmp_path, e, "stoperr")
    set_faults(c.upctl_home, stop_state="error")  # `server stop --wait` warns and exits 0; the server shows 'error'
    proc = run_cli("teardown", "stoperr", "--yes", env=e, timeout=120)  # polling for 'stopped' would take 15 min
    assert proc.returncode == 0, proc.stderr
    assert "destroy-server: ok" in proc.stderr and cloud_uuids(c) == set()
    assert not _record(e, "stoperr").exists()
    check_invariant("server goes to 'error' while stopping", c, e)


def _upctl(e: dict[str, str], *args: str) -> None:
    import subprocess

    proc = subprocess.run(["upctl", *args], env=e, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("fate", ["stopped", "gone"])
def test_a_server_stopped_or_deleted_behind_our_back(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path, fate: str
) -> None:
    """Its auto-stop timer (or someone) stopped the server, or someone deleted it: `status` says so instead of a
    failed probe read as "still starting", and that it bills nothing now; teardown asks the cloud before it
    connects (a stopped server answers no SSH; a deleted one's address may be another's) and says what it found."""
    c, e = scenario
    name = f"behind-{fate}"
    cfg = write_config(c, tmp_path, None, name=name)
    data = yaml.safe_load(cfg.read_text())
    data["provider"]["price_per_hour"] = 1.92
    cfg.write_text(yaml.safe_dump(data))
    assert run_cli("deploy", str(cfg), env=e).returncode == 0
    server = json.loads(_record(e, name).read_text())["server"]
    uuid = server["uuid"]
    _upctl(e, "server", "stop", uuid, "--wait")
    if c.mock_hosts.mode_used == "netns":  # a powered-off server answers nothing, SSH included
        with pytest.raises(OSError):
            socket.create_connection((server["ip"], c.ssh_port), timeout=2).close()
    if fate == "gone":
        _upctl(e, "server", "delete", uuid, "--delete-storages")
    live = json.loads(run_cli("status", name, "--json", env=e).stdout)[0]["live"]
    assert live["server"] == {"checked": True, "state": fate, "error": None}
    assert live["engine_health"]["ok"] is False and live["billing"] is False
    assert live["engine_health"]["detail"].startswith(f"the server is {fate} (")
    assert "still starting" not in live["engine_health"]["detail"]
    text = run_cli("status", name, env=e).stdout
    assert f"  engine:  UNHEALTHY: the server is {fate} (" in text
    assert f"  cost:    not billing now (server {fate}; 1.92 EUR per hour while started), 1.92 EUR so far" in text
    extend = run_cli("extend", name, "2h", env=e)  # nothing to re-arm: said at once, no SSH retries
    assert extend.returncode == 3, extend.stderr
    assert f"error: server {uuid}: the server is {fate} (" in extend.stderr and "hint: `orchestrator " in extend.stderr
    assert "] connect" not in extend.stderr
    proc = run_cli("teardown", name, "--yes", env=e)
    assert proc.returncode == 0, proc.stderr
    said = {"stopped": "skipped: the server is stopped (nothing runs on it)",
            "gone": "skipped: the server is already gone"}[fate]  # fmt: skip
    assert "stop-engine: ok" in proc.stderr and said in proc.stderr
    assert "could not stop the engine cleanly" not in proc.stderr  # no SSH attempt at all
    removed = "the server was already gone" if fate == "gone" else "server deleted and confirmed gone"
    assert f"deployment {name} removed: {removed}, state forgotten" in proc.stdout
    assert cloud_uuids(c) == set() and not _record(e, name).exists()
    check_invariant(f"server {fate} behind our back", c, e)


def test_teardown_after_a_deploy_whose_scrape_job_was_never_written(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path
) -> None:
    """The deploy's monitoring step failed before prometheus.yml's directory existed (a path that cannot be made):
    there is no job to remove, so teardown finishes instead of failing on that directory on every re-run."""
    c, e = scenario
    nowhere = Path("/proc/orchestrator-test-nowhere/prometheus.yml")  # nobody, not even root, can create it
    cfg = write_config(c, tmp_path, None, name="nojob")
    data = yaml.safe_load(cfg.read_text())
    data["monitoring"].update(prometheus_config=str(nowhere), file_sd_dir=None)
    cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("deploy", str(cfg), env=e)
    assert proc.returncode == 9, proc.stderr
    assert "was KEPT for debugging and is billing by the hour" in proc.stderr
    down = run_cli("teardown", "nojob", "--yes", env=e)
    assert down.returncode == 0, down.stderr
    assert "unmonitor: ok (" in down.stderr and f"{nowhere} does not exist: no scrape job to remove" in down.stderr
    assert cloud_uuids(c) == set() and not _record(e, "nojob").exists()
    check_invariant("teardown after a scrape job that was never written", c, e)
