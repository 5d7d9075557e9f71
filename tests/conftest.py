"""Shared fixtures: a clean environment for every test (no real credentials, no real ~/.orchestrator)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mockcloud.cloud import MockCloud
    from mockcloud.prometheus import Prometheus

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    for var in (
        "UPCLOUD_TOKEN",
        "UPCLOUD_USERNAME",
        "UPCLOUD_PASSWORD",
        "HF_TOKEN",
        "VLLM_API_KEY",
        "ORCHESTRATOR_UPCTL",
        "SSH_AUTH_SOCK",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path_factory.mktemp("orch-home")))
    yield


@pytest.fixture(scope="session")
def mock_cloud() -> Iterator[MockCloud]:
    """The two-host mock cloud of the e2e modules (test_e2e, test_e2e_*, test_faults*, test_hostile_input,
    test_hostprep, ...: every module that imports test_e2e's `cloud`), started once per session, not per module.

    Shared because sharing it is what each of those modules already does between its own tests, and the per-test
    `env` fixture (tests/test_e2e.py) is what makes that safe: before each test it resets every host's knobs
    (and the install shims' records) and the fake upctl's faults; after it, it deletes every server left in the
    fake world, which powers its host off (every process started on it: engines, containers, timers), empties
    authorized_keys and drops the firewall. So a test sees the same hosts whether the previous test ran in its
    module or in another one. What a test changes outside that reset (files it writes in a host's home, Prometheus
    jobs it leaves behind) was already visible to the next test of its own module; none of them needs a fresh host.
    Measured: a two-host MockCloud starts in ~0.25 s and stops in ~0.15 s, a Prometheus starts in ~0.1 s; this
    saves that once per module (13 modules), and gives the coming fleet modules the same hosts.
    """
    if not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs openssh-server (make setup)")
    from mockcloud.cloud import MockCloud
    from mockcloud.hosts import new_root

    root = new_root("orch-e2e-")
    try:
        with MockCloud(root, hosts=2) as cloud:
            yield cloud
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus | None]:
    """One real Prometheus for the e2e modules (None when it is not installed), started once per session.

    Safe to share: each deployment adds its own `orchestrator-<name>` job (names differ per test) and teardown
    removes it again; the tests query by job, so a job another test left behind is never read.
    """
    from mockcloud.prometheus import Prometheus

    if not Prometheus.available():
        yield None
        return
    with Prometheus(tmp_path_factory.mktemp("prom")) as prom:
        yield prom


SERVED = "served"  # the shared deployment's name


@dataclass(frozen=True)
class Served:
    """A vLLM deployment that is serving: its config, its CLI environment (generated API key), its home."""

    cloud: MockCloud
    config: Path
    env: dict[str, str]

    @property
    def home(self) -> Path:
        return Path(self.env["ORCHESTRATOR_HOME"])

    @property
    def state_file(self) -> Path:
        return self.home / "deployments" / f"{SERVED}.json"

    def deploy(self) -> None:
        proc = run_cli("deploy", str(self.config), env=self.env)
        assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="session")
def _served_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs openssh-server (make setup)")
    import yaml

    from mockcloud.cloud import MockCloud
    from mockcloud.hosts import new_root
    from tests.test_e2e import write_config

    root = new_root("orch-served-")
    tmp = tmp_path_factory.mktemp("served")
    try:
        with MockCloud(root, hosts=1) as cloud:
            env = cloud.env() | {"ORCHESTRATOR_HOME": str(tmp / "home"), "HF_TOKEN": "hf_plantedServedToken31"}
            cloud.hosts[0].reset_knobs()
            cloud.hosts[0].set_knobs(engine_startup_delay=0.3)
            config = write_config(
                cloud, tmp, None, name=SERVED, install={"method": "docker", "image": "vllm/vllm-openai:v0.11.0"}
            )
            data = yaml.safe_load(config.read_text())
            data["provider"] |= {"ttl": "1h", "price_per_hour": 1.92, "currency": "EUR"}
            config.write_text(yaml.safe_dump(data))
            served = Served(cloud, config, env)
            served.deploy()
            try:
                yield served
            finally:
                run_cli("teardown", SERVED, "--yes", env=env)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def served(_served_once: Served) -> Served:
    """One vLLM deployment (docker method, provider.ttl 1h, 1.92 EUR/h, generated API key) on its own one-host mock
    cloud, deployed once per session and shared by the tests that only use a serving deployment: `logs`, `ssh`,
    `extend` (tests/test_reach.py), `bench` and live `status` (tests/test_bench.py).

    Why it is safe: those tests read the deployment (logs, status, SSH commands, benchmark requests) or change only
    what they then assert on (`extend` re-arms the timer and checks the new one); knobs a test sets (the mock
    engine's delays, read per request) it puts back itself. A test that tears the deployment down (marked
    `consumes_served`) is run after the others (pytest_collection_modifyitems below), and whichever test asks for it
    next, in any order, gets it deployed again: this fixture re-deploys when the state file is gone.
    """
    if not _served_once.state_file.exists():
        _served_once.deploy()
    return _served_once


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that tear the shared `served` deployment down run last, so that it is deployed once per session."""
    items.sort(key=lambda item: item.get_closest_marker("consumes_served") is not None)


@contextlib.contextmanager
def asking_meanwhile(ask: Callable[[], int], every: float = 0.05) -> Iterator[list[int | str]]:
    """Calls ``ask`` (a request returning its HTTP status) every ``every`` seconds while the block runs; yields the
    list of answers, a failed request recorded by its exception's name: "did it answer throughout?"."""
    import httpx

    codes: list[int | str] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                codes.append(ask())
            except httpx.HTTPError as exc:
                codes.append(type(exc).__name__)
            time.sleep(every)

    asker = threading.Thread(target=loop)
    asker.start()
    try:
        yield codes
    finally:
        stop.set()
        asker.join()


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess (what a user runs)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report the fault-injection totals: scenarios run and untracked (orphaned) servers found — must be 0."""
    from tests.faultlog import SCENARIOS

    if SCENARIOS:
        orphans = sum(n for _, n in SCENARIOS)
        terminalreporter.write_line(
            f"fault injection: {len(SCENARIOS)} scenarios run, {orphans} untracked servers found"
        )
