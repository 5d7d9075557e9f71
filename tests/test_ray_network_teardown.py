"""A Ray cluster's private network at teardown (steps/cluster.py `delete-network`), against the fake upctl.

The network is deleted only once no server is attached: the fake answers NETWORK_NOT_EMPTY as the API does while
one is, the step waits and retries, confirms the network gone (`network show`: NETWORK_NOT_FOUND) and only then
clears the record; a network that stays attached ends in TeardownIncomplete (exit 10) naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.actions import Action, Local, Pause, Result
from orchestrator.config import load_config
from orchestrator.context import StepContext
from orchestrator.errors import TeardownIncomplete
from orchestrator.providers.upctl_parse import parse_network, parse_server
from orchestrator.providers.upctl_provider import UpctlProvider
from orchestrator.state import Deployment, NetworkRecord
from orchestrator.steps import cluster as cluster_steps

REPO = Path(__file__).resolve().parents[1]
UPCTL = REPO / "mockcloud" / "bin" / "upctl"
CONFIG = "name: rayn\nengine:\n  kind: vllm\n  model: m\ncluster:\n  kind: ray\n  nodes: 1\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "world").mkdir()
    (tmp_path / "home").mkdir()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    return {**keep, "HOME": str(tmp_path / "home"), "FAKE_UPCTL_HOME": str(tmp_path / "world"),
            "MOCKCLOUD_PYTHON": sys.executable, "PYTHONPATH": str(REPO), "NO_COLOR": "1",
            "UPCLOUD_TOKEN": "test-token"}  # fmt: skip


def run(env: dict[str, str], argv: tuple[str, ...] | list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(UPCTL), *argv[1:]], env=env, capture_output=True, text=True, timeout=60, check=False)


def _attached(env: dict[str, str], tmp_path: Path) -> tuple[str, str]:
    """A private network with one server on it, made through the fake: (network uuid, server uuid)."""
    prov = UpctlProvider()
    net = parse_network(run(env, ["upctl", "network", "create", "--name", "rayn-ray", "--zone", "fi-hel2",
                                  "--ip-network", "address=10.60.0.0/24,dhcp=true", "-o", "json"]).stdout)  # fmt: skip
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    key = tmp_path / "k.pub"
    made = run(env, ["upctl", "server", "create", "--hostname", "n1", "--zone", "fi-hel2", "--plan", "1xCPU-2GB",
                     "--os-storage-size", "25", "--ssh-keys", str(key), "--network", "type=utility",
                     "--network", f"type=private,network={net.uuid}", "-o", "json"])  # fmt: skip
    assert made.returncode == 0, made.stderr
    srv = parse_server(made.stdout)
    for _ in range(10):  # the fake settles after a poll or two
        if parse_server(run(env, prov.show(srv.uuid).action.argv).stdout).state == "started":
            break
    return net.uuid, srv.uuid


def _delete_server(env: dict[str, str], uuid: str) -> None:
    for step in (["server", "stop", uuid, "--type", "hard", "--wait"], ["server", "delete", uuid]):
        assert run(env, ["upctl", *step]).returncode == 0


def _drive(ctx: StepContext, env: dict[str, str], on_pause: Callable[[], None]) -> tuple[str | None, list[str]]:
    """Run the step: upctl calls on the fake, a Pause runs ``on_pause`` instead of sleeping."""
    seen: list[str] = []
    gen = cluster_steps.delete_network(ctx)

    def execute(action: Action) -> Result:
        seen.append(action.describe())
        if isinstance(action, Pause):
            on_pause()
            return Result()
        assert isinstance(action, Local)
        r = run(env, action.argv)
        return Result(r.returncode, r.stdout, r.stderr)

    try:
        action = next(gen)
        while True:
            action = gen.send(execute(action))
    except StopIteration as stop:
        return stop.value, seen


def _ctx(tmp_path: Path, network: str) -> StepContext:
    path = tmp_path / "rayn.yaml"
    path.write_text(CONFIG)
    cfg = load_config(path, check_files=False)
    dep = Deployment(name="rayn", config_path=str(path))
    dep.network = NetworkRecord(uuid=network, name="rayn-ray", zone="fi-hel2", cidr="10.60.0.0/24")
    return StepContext(cfg=cfg, dep=dep, store=None, provider=UpctlProvider(str(UPCTL)))


def test_network_goes_once_its_server_is_gone(env: dict[str, str], tmp_path: Path) -> None:
    network, server = _attached(env, tmp_path)
    ctx = _ctx(tmp_path, network)
    note, seen = _drive(ctx, env, lambda: _delete_server(env, server))  # detached while the step waits
    assert note == f"private network {network} deleted"
    assert seen[0].endswith(f"network delete {network} -o json") and seen[1].startswith("wait: ")
    assert seen[-1].endswith(f"network show {network} -o json")  # confirmed gone
    assert ctx.dep.network is None
    assert run(env, ["upctl", "network", "show", network, "-o", "json"]).returncode != 0


def test_network_still_attached_is_named_and_kept(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_steps, "DELETE_TRIES", 2)
    network, server = _attached(env, tmp_path)
    ctx = _ctx(tmp_path, network)
    with pytest.raises(TeardownIncomplete) as err:
        _drive(ctx, env, lambda: None)
    assert f"private network {network} (rayn-ray) remains" in err.value.message
    assert err.value.exit_code == 10
    assert ctx.dep.network is not None  # the record keeps it for a re-run
    _delete_server(env, server)
