"""Fault injection on the mock cloud: after every failure, the cloud's servers are exactly what local state tracks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mockcloud.cloud import MockCloud
from mockcloud.hosts import new_root
from mockcloud.upctl import read_state, set_faults
from orchestrator.owner import ensure_owner
from tests.conftest import REPO, run_cli
from tests.faultlog import SCENARIOS
from tests.test_e2e import cloud, env, prom, write_config  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")


def cloud_uuids(c: MockCloud) -> set[str]:
    servers = read_state(c.upctl_home).get("servers") or {}
    items = servers.values() if isinstance(servers, dict) else servers
    return {s["uuid"] for s in items if isinstance(s, dict)}


def tracked_uuids(home: Path) -> set[str]:
    out = set()
    for f in (home / "deployments").glob("*.json"):
        doc = json.loads(f.read_text())
        if doc.get("server"):
            out.add(doc["server"]["uuid"])
    return out


def check_invariant(name: str, c: MockCloud, e: dict[str, str], *others: dict[str, str]) -> None:
    """Zero untracked servers: everything in the cloud is in local state (of `e` or of the `others` homes on the
    same account), and each home's `status --orphans` agrees (no orphans; others' servers only as foreign)."""
    homes = [e, *others]
    tracked = [tracked_uuids(Path(h["ORCHESTRATOR_HOME"])) for h in homes]
    untracked = cloud_uuids(c) - set().union(*tracked)
    SCENARIOS.append((name, len(untracked)))
    assert not untracked, f"{name}: untracked servers {untracked}"
    for i, h in enumerate(homes):
        orphans = run_cli("status", "--orphans", "--json", env=h)
        assert orphans.returncode == 0, orphans.stderr
        doc = json.loads(orphans.stdout)
        assert doc["orphans"] == []
        theirs = set().union(*(t for j, t in enumerate(tracked) if j != i))
        assert {f["uuid"] for f in doc["foreign"]} == theirs


def cleanup(c: MockCloud, e: dict[str, str]) -> None:
    set_faults(c.upctl_home)
    for h in c.hosts:
        h.reset_knobs()
    for f in (Path(e["ORCHESTRATOR_HOME"]) / "deployments").glob("*.json"):
        down = run_cli("teardown", f.stem, "--yes", env=e)
        assert down.returncode == 0, down.stderr
    assert cloud_uuids(c) == set()


@pytest.fixture
def scenario(cloud: MockCloud, env: dict[str, str]) -> Iterator[tuple[MockCloud, dict[str, str]]]:  # noqa: F811
    yield cloud, env
    cleanup(cloud, env)


UPCTL_FAULTS = [
    # (name, faults, expected exit, words in stderr)
    ("create 5xx twice, then ok", {"fail": {"server create": {"times": 2, "kind": "5xx"}}}, 0, "transient"),
    ("create 5xx every time", {"fail": {"server create": {"times": 9, "kind": "5xx"}}}, 3, "500"),
    ("no GPU capacity in zone", {"devices": {"fi-hel2": {"GPU-8xCPU-64GB-1xL40S": 0}}}, 3, "fi-hel2"),
    ("create refused: capacity", {"fail": {"server create": {"times": 1, "kind": "capacity"}}}, 3, "capacity"),
    (
        "quota exceeded",
        {"fail": {"server create": {"times": 1, "kind": "quota"}}},
        3,
        "error: upctl server create failed: The request would exceed the account resource limits for GPUs "
        "(type=RESOURCE_LIMIT_EXCEEDED, status=409)\nhint: the account's resource limits (e.g. GPUs) do not allow "
        "another server: see `upctl account show`",
    ),
    ("--wait times out (exit 0)", {"wait_timeout": True, "boot_polls": 2}, 0, "checking the state myself"),
    ("zone list 5xx once", {"fail": {"zone list": {"times": 1, "kind": "5xx"}}}, 0, "transient"),
    (
        "plans list times out",
        {"fail": {"server plans": {"times": 1, "kind": "timeout", "timeout_seconds": 1}}},
        0,
        "transient",
    ),
]


@pytest.mark.parametrize("name, faults, code, words", UPCTL_FAULTS, ids=[f[0] for f in UPCTL_FAULTS])
def test_provider_faults(
    scenario: tuple[MockCloud, dict[str, str]],
    tmp_path: Path,
    name: str,
    faults: dict[str, object],
    code: int,
    words: str,
) -> None:
    c, e = scenario
    set_faults(c.upctl_home, **faults)
    proc = run_cli("deploy", str(write_config(c, tmp_path, None, name="faulty")), env=e)
    assert proc.returncode == code, proc.stderr
    assert words.lower() in proc.stderr.lower()
    assert not any(line.startswith("Traceback") for line in proc.stderr.splitlines())
    if code:
        assert "hint:" in proc.stderr
    check_invariant(name, c, e)


HOST_FAULTS = [
    ("engine OOM while loading", {"engine_fail": "oom"}, {}, 8, "out of memory"),
    ("engine gated model", {"engine_fail": "gated"}, {}, 8, "HF_TOKEN"),
    ("GPU memory held by another process", {"engine_fail": "free_memory"}, {}, 8, "--query-compute-apps"),
    (
        "engine never healthy",
        {"engine_startup_delay": 30},
        {"health": {"timeout": "2s", "interval": "0.3s"}},
        8,
        "not ready after",
    ),
    ("nvidia driver not loaded", {"nvsmi_fail": True}, {}, 6, "driver"),
]


@pytest.mark.parametrize("name, knobs, engine, code, words", HOST_FAULTS, ids=[f[0] for f in HOST_FAULTS])
def test_host_faults(
    scenario: tuple[MockCloud, dict[str, str]],
    tmp_path: Path,
    name: str,
    knobs: dict[str, object],
    engine: dict[str, object],
    code: int,
    words: str,
) -> None:
    c, e = scenario
    for h in c.hosts:
        h.set_knobs(**knobs)
    proc = run_cli("deploy", str(write_config(c, tmp_path, None, name="hostfault", **engine)), env=e)
    assert proc.returncode == code, proc.stderr
    assert words.lower() in proc.stderr.lower()
    assert "KEPT for debugging" in proc.stderr and "orchestrator teardown hostfault --yes" in proc.stderr
    check_invariant(name, c, e)


def test_ssh_unreachable(scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path) -> None:
    c, e = scenario
    cfg = write_config(c, tmp_path, None, name="nossh")
    text = (
        cfg.read_text().replace(f"port: {c.ssh_port}", "port: 2").replace("connect_timeout: 30s", "connect_timeout: 3s")
    )
    cfg.write_text(text)
    proc = run_cli("deploy", str(cfg), env=e)
    assert proc.returncode == 5, proc.stderr
    assert "cannot reach" in proc.stderr
    check_invariant("sshd unreachable", c, e)


def test_promtool_rejects_and_config_restored(scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path) -> None:
    c, e = scenario
    prom_cfg = tmp_path / "prom" / "prometheus.yml"
    prom_cfg.parent.mkdir()
    original = "global:\n  scrape_interval: 5s\n  scrape_timeout: 10s\nscrape_configs: []\n"
    prom_cfg.write_text(original)
    proc = run_cli("deploy", str(write_config(c, tmp_path, None, name="badprom")), env=e)
    assert proc.returncode == 9, proc.stderr
    assert "promtool rejected" in proc.stderr
    assert prom_cfg.read_text() == original, "a rejected config must be rolled back"
    check_invariant("promtool rejects the config", c, e)


def test_state_dir_unwritable(scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path) -> None:
    c, e = scenario
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    proc = run_cli(
        "deploy", str(write_config(c, tmp_path, None, name="nostate")), env=e | {"ORCHESTRATOR_HOME": str(blocker)}
    )
    assert proc.returncode == 11, proc.stderr
    assert cloud_uuids(c) == set(), "nothing may be created when state cannot be written"
    check_invariant("state directory unwritable", c, e)


def test_teardown_failure_is_reported_and_kept(scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path) -> None:
    c, e = scenario
    assert run_cli("deploy", str(write_config(c, tmp_path, None, name="stuck")), env=e).returncode == 0
    set_faults(c.upctl_home, fail={"server delete": {"times": 9, "kind": "5xx"}})
    proc = run_cli("teardown", "stuck", "--yes", env=e)
    assert proc.returncode == 10, proc.stderr
    assert "teardown incomplete" in proc.stderr and "still exists" in proc.stderr
    check_invariant("server delete keeps failing", c, e)


def test_teardown_on_failure_removes_server(scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path) -> None:
    c, e = scenario
    for h in c.hosts:
        h.set_knobs(engine_fail="kv_cache")
    proc = run_cli("deploy", str(write_config(c, tmp_path, None, name="tof")), "--teardown-on-failure", env=e)
    assert proc.returncode == 8, proc.stderr
    assert "deleted (--teardown-on-failure)" in proc.stderr
    assert cloud_uuids(c) == set() and not (Path(e["ORCHESTRATOR_HOME"]) / "deployments" / "tof.json").exists()
    check_invariant("--teardown-on-failure", c, e)


def test_crash_between_create_and_state_write_is_adopted(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path
) -> None:
    """A server created with our labels but never recorded (the tool died) is listed as an orphan, then adopted."""
    c, e = scenario
    cfg = write_config(c, tmp_path, None, name="lost")
    created = subprocess.run(
        [
            "upctl",
            "server",
            "create",
            "--hostname",
            "lost",
            "--zone",
            "fi-hel2",
            "--plan",
            "GPU-8xCPU-64GB-1xL40S",
            "--os",
            "Ubuntu Server 24.04 LTS (Noble Numbat)",
            "--os-storage-size",
            "50",
            "--ssh-keys",
            f"{c.client_key}.pub",
            "--label",
            "managed_by=orchestrator",
            "--label",
            "orchestrator_deployment=lost",
            "--label",
            f"orchestrator_owner={ensure_owner(Path(e['ORCHESTRATOR_HOME'])).id}",
            "--wait",
            "-o",
            "json",
        ],
        env=e,
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stderr
    uuid = json.loads(created.stdout)["uuid"]
    listed = json.loads(run_cli("status", "--orphans", "--json", env=e).stdout)["orphans"]
    assert [o["uuid"] for o in listed] == [uuid] and listed[0]["deployment"] == "lost"
    proc = run_cli("deploy", str(cfg), env=e)
    assert proc.returncode == 0, proc.stderr
    assert "adopting it" in proc.stderr and cloud_uuids(c) == {uuid}
    check_invariant("crash between create and state write", c, e)


def test_teardown_orphans(scenario: tuple[MockCloud, dict[str, str]]) -> None:
    c, e = scenario
    created = subprocess.run(
        [
            "upctl",
            "server",
            "create",
            "--hostname",
            "ghost",
            "--zone",
            "fi-hel2",
            "--plan",
            "GPU-8xCPU-64GB-1xL40S",
            "--os-storage-size",
            "50",
            "--ssh-keys",
            f"{c.client_key}.pub",
            "--label",
            "managed_by=orchestrator",
            "--label",
            "orchestrator_deployment=ghost",
            "--label",
            f"orchestrator_owner={ensure_owner(Path(e['ORCHESTRATOR_HOME'])).id}",
            "--wait",
            "-o",
            "json",
        ],
        env=e,
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stderr
    assert run_cli("teardown", "--orphans", env=e).returncode == 2  # not interactive: needs --yes
    proc = run_cli("teardown", "--orphans", "--yes", env=e)
    assert proc.returncode == 0, proc.stderr
    assert "1 orphaned server(s) deleted" in proc.stdout and cloud_uuids(c) == set()
    check_invariant("teardown --orphans", c, e)


def _deploy_proc(cfg: Path, e: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "deploy", str(cfg)],
        env=e,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def test_concurrent_deploys(scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path) -> None:
    c, e = scenario
    a = _deploy_proc(write_config(c, tmp_path, None, name="left"), e)
    lock = Path(e["ORCHESTRATOR_HOME"]) / "deployments" / "left.lock"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.05)
    same = run_cli("deploy", str(tmp_path / "left.yaml"), env=e)
    assert same.returncode == 11 and "is busy" in same.stderr and f"pid {a.pid}" in same.stderr
    b = _deploy_proc(write_config(c, tmp_path, None, name="right"), e)
    for p in (a, b):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert len(cloud_uuids(c)) == 2
    check_invariant("concurrent deploys", c, e)


def read_deployment(home: Path, name: str) -> dict[str, Any]:
    """The deployment's state file ({} while it does not exist or is being replaced)."""
    try:
        data = json.loads((home / "deployments" / f"{name}.json").read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def wait_for_state(home: Path, name: str, ready: Callable[[dict[str, Any]], bool], proc: subprocess.Popen[str]) -> None:
    """Block until the deployment's state file satisfies `ready` (a known point of the run), or fail."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if ready(read_deployment(home, name)):
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the deploy ended (exit {proc.returncode}) before the awaited point:\n{err}")
        time.sleep(0.05)
    pytest.fail("the awaited point of the deploy was never reached")


def _server_recorded(doc: dict[str, Any]) -> bool:
    return bool((doc.get("server") or {}).get("uuid"))


def _engine_started(doc: dict[str, Any]) -> bool:
    return (doc.get("steps") or {}).get("start-engine", {}).get("status") == "ok"


INTERRUPTS = [
    # (step that is running, signal, upctl faults, host knobs, point to wait for)
    ("provision", signal.SIGINT, {"wait_timeout": True, "boot_polls": 3}, {}, _server_recorded),
    ("provision", signal.SIGTERM, {"wait_timeout": True, "boot_polls": 3}, {}, _server_recorded),
    ("health", signal.SIGINT, {}, {"engine_startup_delay": 120}, _engine_started),
    ("health", signal.SIGTERM, {}, {"engine_startup_delay": 120}, _engine_started),
]


@pytest.mark.parametrize(
    "step, sig, faults, knobs, point", INTERRUPTS, ids=[f"{i[0]}-{i[1].name}" for i in INTERRUPTS]
)
def test_interrupt_during_a_known_step(
    scenario: tuple[MockCloud, dict[str, str]],
    tmp_path: Path,
    step: str,
    sig: signal.Signals,
    faults: dict[str, object],
    knobs: dict[str, object],
    point: Callable[[dict[str, Any]], bool],
) -> None:
    """SIGINT/SIGTERM while `step` is running: exit 130, the step named, resume + teardown printed, state agrees."""
    c, e = scenario
    set_faults(c.upctl_home, **faults)
    for h in c.hosts:
        h.set_knobs(**knobs)
    cfg = write_config(c, tmp_path, None, name="sig", health={"timeout": "10m", "interval": "0.3s"})
    home = Path(e["ORCHESTRATOR_HOME"])
    p = _deploy_proc(cfg, e)
    wait_for_state(home, "sig", point, p)
    if step == "health":  # start-engine's result is saved just before health begins; health then waits 120 s
        time.sleep(1.0)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert not any(line.startswith("Traceback") for line in err.splitlines())
    assert f"interrupted during step {step}" in err
    assert f"resume: orchestrator deploy {cfg}" in err and "orchestrator teardown sig --yes" in err
    doc = read_deployment(home, "sig")
    assert doc["steps"][step]["status"] == "interrupted"
    assert cloud_uuids(c) == {doc["server"]["uuid"]}, "the created server is tracked, nothing else exists"
    check_invariant(f"{sig.name} during step {step}", c, e)
    settle(c, e, doc["server"]["uuid"])


def settle(c: MockCloud, e: dict[str, str], uuid: str) -> None:
    """Let a server interrupted while booting finish booting (the fake counts `server show` calls as time)."""
    for _ in range(5):
        shown = subprocess.run(["upctl", "server", "show", uuid, "-o", "json"], env=e, capture_output=True, text=True)
        if json.loads(shown.stdout).get("state") != "maintenance":
            return


def test_capacity_falls_back_to_the_next_plan(scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path) -> None:
    c, e = scenario
    set_faults(c.upctl_home, devices={"fi-hel2": {"GPU-8xCPU-64GB-1xL40S": 0, "GPU-12xCPU-128GB-1xL40S": 4}})
    cfg = write_config(c, tmp_path, None, name="fallback")
    data = yaml.safe_load(cfg.read_text())
    data["provider"]["fallbacks"] = [{"plan": "GPU-12xCPU-128GB-1xL40S"}]
    cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("deploy", str(cfg), env=e)
    assert proc.returncode == 0, proc.stderr
    assert "no GPU-8xCPU-64GB-1xL40S stock in fi-hel2; trying the next fallback" in proc.stderr
    status = json.loads(run_cli("status", "fallback", "--json", env=e).stdout)[0]
    assert status["server"]["plan"] == "GPU-12xCPU-128GB-1xL40S"
    check_invariant("capacity fallback to another plan", c, e)


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def short_ssh_retries(cfg: Path, connect_timeout: str = "5s") -> Path:
    """For a host whose sshd is killed: SSH reconnects until ssh.connect_timeout runs out, once per attempt of the
    step (two), so test_e2e's 30 s only makes the test wait a minute for the same error; 5 s gives the same
    outcome. The host is up before the kill, so the first connect never needs the time."""
    data = yaml.safe_load(cfg.read_text())
    data["ssh"]["connect_timeout"] = connect_timeout
    cfg.write_text(yaml.safe_dump(data))
    return cfg


def test_sshd_killed_mid_step(tmp_path: Path) -> None:
    """The host's sshd dies while packages install: SSH error, server tracked, teardown still removes it."""
    root = new_root("orch-sshkill-")
    try:
        with MockCloud(root, hosts=1) as c:
            e = c.env() | {"ORCHESTRATOR_HOME": str(tmp_path / "home")}
            p = _deploy_proc(short_ssh_retries(write_config(c, tmp_path, None, name="cut")), e)
            state = tmp_path / "home" / "deployments" / "cut.json"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if state.exists() and "verify-gpu" in json.loads(state.read_text() or "{}").get("steps", {}):
                    break
                time.sleep(0.05)
            for pid in _process_tree(c.hosts[0].sshd_pid):  # the listener and every open session
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            out, err = p.communicate(timeout=120)
            assert p.returncode in (5, 7), err
            assert "KEPT for debugging" in err and not any(ln.startswith("Traceback") for ln in err.splitlines())
            check_invariant("sshd killed mid-step", c, e)
            down = run_cli("teardown", "cut", "--yes", env=e)
            assert down.returncode == 0, down.stderr
            assert cloud_uuids(c) == set()
    finally:
        shutil.rmtree(root, ignore_errors=True)
