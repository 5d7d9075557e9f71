"""bring_up on nodes where Ray already runs (deploy re-run, redeploy): the probe's answers drive keep, start or
`ray stop` + start on each node; in redeploy's keep-only mode anything but keep is refused before any change.

The probe answers are the JSON lines the probe script prints (orchestrator/ray_converge.py); the e2e side (the
script on real Ray, deploy twice, redeploy) is tests/test_ray_deploy.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.actions import OnNode, Remote, Result, Upload
from orchestrator.config import load_config
from orchestrator.ray_cluster import RayCluster, RayClusterError, RayNode, bring_up
from orchestrator.ray_converge import RAYLET_PORTS, parse_probe
from tests.conftest import REPO

CONFIG = REPO / "configs" / "vllm-ray-l40s.yaml"
HEAD, WORKER = RayNode("r1", "10.60.0.10", "203.0.113.10"), RayNode("r2", "10.60.0.11", "203.0.113.11")
GCS = "10.60.0.10:6379"
PORTS = {"object_manager_port": "8076", "node_manager_port": "8077", "metrics_export_port": "8080",
         "min_worker_port": "10002", "max_worker_port": "10999"}  # fmt: skip


def _cluster(tmp_path: Path, install: str = "none") -> RayCluster:
    text = CONFIG.read_text().replace("  kind: ray\n", f"  kind: ray\n  install: {install}\n")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return RayCluster(load_config(path), [HEAD, WORKER])


def _probe(node: RayNode, *, gcs: str | None = None, joined: str | None = GCS, version: str = "2.60.0",
           alive: tuple[str, ...] = ("10.60.0.10", "10.60.0.11"), ports: dict[str, str] = PORTS) -> str:  # fmt: skip
    doc: dict[str, object] = {"gcs": [], "raylets": []}
    if gcs:
        ip, _, port = gcs.partition(":")
        doc["gcs"] = [{"ip": ip, "port": port}]
    if joined:
        doc["raylets"] = [{"ip": node.private_ip, "gcs": joined, "ports": ports}]
    if node is HEAD:
        doc["version"], doc["alive"] = version, list(alive)
    return json.dumps(doc)


NOTHING = json.dumps({"gcs": [], "raylets": []})
HEAD_UP = _probe(HEAD, gcs=GCS)
WORKER_UP = _probe(WORKER)


def _run(cluster: RayCluster, answers: dict[str, str], keep_only: str | None = None) -> tuple[list[str], str | None]:
    """Drive bring_up; each node's probe run answers ``answers[node]``, `ray --version` 2.60.0, all else rc 0."""
    lines: list[str] = []
    gen = bring_up(cluster, keep_only)
    try:
        step: OnNode = next(gen)
        while True:
            action = step.action
            lines.append(f"{step.node} {action.describe() if isinstance(action, Upload) else _what(action)}")
            out = ""
            if isinstance(action, Remote) and action.command.endswith("--version"):
                out = "ray, version 2.60.0\n"
            elif isinstance(action, Remote) and "ray-probe.py" in action.command:
                out = answers[str(step.node)]
            step = gen.send(Result(stdout=out))
    except StopIteration as stop:
        return lines, stop.value


def _what(action: object) -> str:
    if isinstance(action, Remote):
        for word in ("ray-probe.py", "ray stop", "start --head", "ray start", "--version", "mkdir"):
            if word in action.command:
                return word
        return action.command
    return type(action).__name__


def _acts(lines: list[str]) -> list[str]:
    return [line for line in lines if line.split(" ", 1)[1] in ("ray stop", "start --head", "ray start")]


def test_the_probe_answer_is_filtered_to_the_nodes_own_address() -> None:
    other = {"ip": "10.60.0.99", "gcs": "10.60.0.99:6379", "ports": PORTS}
    doc = json.loads(_probe(WORKER))
    doc["raylets"].append(other)
    doc["gcs"].append({"ip": "10.60.0.99", "port": "6379"})
    found = parse_probe(Result(stdout="noise\n" + json.dumps(doc) + "\n"), WORKER)
    assert (found.gcs, found.raylets, found.foreign) == ((), (GCS,), 2)
    assert dict(found.ports) == PORTS and set(RAYLET_PORTS) == set(PORTS)
    assert not parse_probe(Result(rc=1, stdout="python: not found"), WORKER).known
    assert not parse_probe(Result.unknown(), WORKER).known


def test_everything_running_as_configured_is_kept(tmp_path: Path) -> None:
    lines, note = _run(_cluster(tmp_path), {"r1": HEAD_UP, "r2": WORKER_UP})
    assert _acts(lines) == []
    assert note is not None and note.endswith("1 worker(s) joined; already running: r1, r2")


def test_nothing_running_starts_both_without_a_stop(tmp_path: Path) -> None:
    lines, note = _run(_cluster(tmp_path), {"r1": NOTHING, "r2": NOTHING})
    assert _acts(lines) == ["r1 start --head", "r2 ray start"]
    assert note is not None and note.endswith("started: r1, r2")


def test_head_up_and_worker_down_starts_only_the_worker(tmp_path: Path) -> None:
    lines, note = _run(_cluster(tmp_path), {"r1": HEAD_UP, "r2": NOTHING})
    assert _acts(lines) == ["r2 ray start"]
    assert note is not None and "already running: r1; started: r2" in note


@pytest.mark.parametrize(
    ("head", "worker", "acts", "why"),
    [
        (_probe(HEAD, gcs=GCS, version="2.49.1"), WORKER_UP,
         ["r1 ray stop", "r1 start --head", "r2 ray stop", "r2 ray start"], "ray 2.49.1 runs, the config pins 2.60.0"),
        (_probe(HEAD, gcs="10.60.0.10:6380", joined="10.60.0.10:6380"), WORKER_UP,
         ["r1 ray stop", "r1 start --head", "r2 ray stop", "r2 ray start"], "the head's GCS is not at 10.60.0.10:6379"),
        (_probe(HEAD, gcs=GCS, ports={**PORTS, "node_manager_port": "9999"}), WORKER_UP,
         ["r1 ray stop", "r1 start --head", "r2 ray stop", "r2 ray start"], "node_manager_port 9999 (config 8077)"),
        (HEAD_UP, _probe(WORKER, joined="10.0.0.5:6379"), ["r2 ray stop", "r2 ray start"], "joined 10.0.0.5:6379"),
        (_probe(HEAD, gcs=GCS, alive=("10.60.0.10",)), WORKER_UP, ["r2 ray stop", "r2 ray start"],
         "the head does not list it ALIVE"),
        (HEAD_UP, _probe(WORKER, gcs="10.60.0.11:6379", joined="10.60.0.11:6379"), ["r2 ray stop", "r2 ray start"],
         "runs a Ray head of its own"),
        (HEAD_UP, json.dumps({"gcs": [], "raylets": [], "others": [{"ip": "10.60.0.11", "name": "agent.py"}]}),
         ["r2 ray stop", "r2 ray start"], "no raylet, but Ray's agent.py left from a start before"),
    ],
)  # fmt: skip
def test_ray_running_otherwise_is_stopped_then_started(
    tmp_path: Path, head: str, worker: str, acts: list[str], why: str
) -> None:
    lines, note = _run(_cluster(tmp_path), {"r1": head, "r2": worker})
    assert _acts(lines) == acts
    assert note is not None and why in note, note


def test_a_node_reinstalled_in_this_run_is_restarted(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path, install="pip")
    gen = bring_up(cluster)
    seen: list[str] = []
    step = next(gen)
    answers = iter(["ray, version 2.49.1\n"])  # r1 has an old Ray: installed now, its running Ray is restarted
    try:
        while True:
            action = step.action
            seen.append(f"{step.node} {_what(action)}")
            out = ""
            if isinstance(action, Remote) and action.command.endswith("--version"):
                out = next(answers, "ray, version 2.60.0\n")
            elif isinstance(action, Remote) and "ray-probe.py" in action.command:
                out = HEAD_UP if step.node == "r1" else WORKER_UP
            step = gen.send(Result(stdout=out))
    except StopIteration as stop:
        note = stop.value
    assert _acts(seen) == ["r1 ray stop", "r1 start --head", "r2 ray stop", "r2 ray start"]
    assert "ray 2.60.0 was just installed" in note


def test_keep_only_refuses_before_any_change_and_keeps_a_running_cluster(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path)
    lines, note = _run(cluster, {"r1": HEAD_UP, "r2": WORKER_UP}, keep_only="HINT")
    assert _acts(lines) == [] and note is not None and note.endswith("Ray kept on 2 node(s)")
    with pytest.raises(RayClusterError) as err:
        _run(cluster, {"r1": HEAD_UP, "r2": NOTHING}, keep_only="HINT")
    assert err.value.message == "r2: Ray is not running as configured (Ray not running); redeploy keeps Ray as it is"
    assert err.value.hint == "HINT"
    with pytest.raises(RayClusterError) as err:
        _run(cluster, {"r1": _probe(HEAD, gcs=GCS, version="2.49.1"), "r2": WORKER_UP}, keep_only="HINT")
    assert "ray 2.49.1 runs, the config pins 2.60.0" in err.value.message


def test_keep_only_refuses_another_installed_version(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path, install="pip")
    gen = bring_up(cluster, "HINT")
    step = next(gen)
    assert "--version" in _what(step.action)
    with pytest.raises(RayClusterError) as err:
        gen.send(Result(stdout="ray, version 2.49.1\n"))
    assert err.value.message.startswith("r1 has ray 2.49.1 installed, the config pins 2.60.0")


def test_dry_run_of_keep_only_plans_the_probes_and_no_start(tmp_path: Path) -> None:
    gen = bring_up(_cluster(tmp_path), "HINT")
    lines = []
    try:
        step = next(gen)
        while True:
            lines.append(f"{step.node} {_what(step.action)}")
            step = gen.send(Result.unknown())
    except StopIteration as stop:
        note = stop.value
    assert "r1 ray-probe.py" in lines and "r2 ray-probe.py" in lines and _acts(lines) == []
    assert note.endswith("Ray must already run on every node")


def test_keep_only_refuses_when_the_probe_gives_no_answer(tmp_path: Path) -> None:
    with pytest.raises(RayClusterError) as err:
        _run(_cluster(tmp_path), {"r1": "Traceback: no python here", "r2": WORKER_UP}, keep_only="HINT")
    assert err.value.message.startswith("r1: Ray is not running as configured (the probe gave no answer)")


def test_deploy_dry_run_of_a_deployed_cluster_plans_the_probes_on_the_recorded_nodes(tmp_path: Path) -> None:
    """`deploy --dry-run` on an existing cluster: no server is created, each node is probed before any start."""
    import subprocess
    import sys

    from tests.golden_cases import _env, _state_record, normalise

    env = _env(tmp_path)
    _state_record("configs/vllm-ray-l40s.yaml", "qwen-ray", env)
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "deploy", "configs/vllm-ray-l40s.yaml", "--dry-run"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = normalise(proc.stdout, tmp_path)
    assert "upctl server create" not in out and "upctl network create" not in out  # the recorded ones are kept
    probe = out.index('[r1] remote: "$HOME"/ray-venv/bin/python .orchestrator/qwen-ray/ray-probe.py 8265')
    assert probe < out.index("ray start --head") < out.index('[r2] remote: "$HOME"/ray-venv/bin/python .orch')
    assert "ray start --address=10.60.0.10:6379 --node-ip-address=10.60.0.11 " in out  # the recorded addresses
    assert "each node kept where Ray of this cluster runs as configured, else started" in out


def test_deploy_with_fewer_nodes_plans_ray_stop_on_the_leaving_node_before_its_server_goes(tmp_path: Path) -> None:
    """`cluster.nodes: 2 -> 1`: r2 leaves Ray (`ray stop`, nothing left) before its server is stopped and deleted;
    the head is not stopped. The e2e side (the head's Ray kept, Serve running on one node) is in test_ray_deploy."""
    import subprocess
    import sys

    from tests.golden_cases import _env, _state_record, normalise

    env = _env(tmp_path)
    _state_record("configs/vllm-ray-l40s.yaml", "qwen-ray", env)
    one = tmp_path / "one.yaml"
    one.write_text(CONFIG.read_text().replace("  nodes: 2 ", "  nodes: 1 "))
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "deploy", str(one), "--dry-run"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = normalise(proc.stdout, tmp_path)
    leave = out.index("[1/1] ray-leave")
    steps = [
        "[r2] ssh: connect root@203.0.113.11:22 (pinned host key",
        '[r2] remote: "$HOME"/ray-venv/bin/ray stop',
        '[r2] remote: pgrep -u "$(id -u)" -a -f',
        "-> Ray stopped on 1 node(s) leaving the cluster (r2)",
        "[r2] [1/1] destroy-server",
        "[r2]       4. local: upctl server delete 00d8c7a2-0b7e-4c5e-9d3b-6f1a2b3c4d02 --delete-storages",
    ]
    at = [out.index(s, leave) for s in steps]
    assert leave < at[0] and at == sorted(at), out[leave : leave + 3000]
    assert '[r1] remote: "$HOME"/ray-venv/bin/ray stop' not in out[: out.index("[r1] [1/")]  # the head stays up
    assert "upctl server delete 00d8c7a2-0b7e-4c5e-9d3b-6f1a2b3c4d01" not in out
