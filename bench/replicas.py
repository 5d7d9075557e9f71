"""Benchmark (issue 9, "Must show"): `replicas: 8` against `replicas: 1` on the mock cloud, in the same run.

The hosts are set so that their own work is mostly waiting: the engine takes 2 s to start (the mock engines'
`engine_startup_delay` knob; health polled every 0.3 s), nothing is pip-installed (engine.install.method docker:
the fake docker pulls at once). On a small machine the simulation's own CPU (a Python process per fake upctl
call, the mock hosts' tools and sshd: ~2 s per replica) is not waiting, so the same pair runs again with a 20 s
start-up (health polled at the default 2 s), where waiting is what the hosts mostly do, as a real engine's
minutes of model loading are. The difference wall(N) - wall(1) is what running N at once costs beyond one: close
to the same in both, it is the simulation's CPU, not a wait the orchestrator serialises.
Each case is a real `orchestrator deploy` in a child process, on a fresh mock cloud state, then torn down.

Printed per case: the deploy's wall time, the orchestrator's own CPU seconds (its process, every thread: the
child's RUSAGE_SELF, written at exit), that CPU per replica, the fake upctl's CPU (the orchestrator's children),
the mock hosts' (the rest of what the whole machine was busy with meanwhile, from /proc/stat: sshd, the fake
docker/nvidia-smi/sudo, the mock engines) and how busy the machine was. Then the ratio wall(8) / wall(1) (target
<= 1.5), CPU per replica (target <= 0.15 s), the CPU each added replica costs (the fixed start-up, ~0.5 s of
imports, is in the first figure), and the simulation's CPU, which on a small machine bounds the wall by itself
(a real upctl is a Go binary waiting on an API; a real host's work is its GPU's and disks').
Figures are printed, never asserted. Needs openssh-server (the mock hosts are real sshd).
`python bench/replicas.py [N]` (N: the fleet's size, default 8).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mockcloud.cloud import MockCloud  # noqa: E402
from mockcloud.hosts import new_root  # noqa: E402
from mockcloud.upctl import read_state  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 8
# (engine start-up seconds, health poll interval): the issue's example, then start-up waiting that dominates.
CASES = ((2.0, "0.3s"), (20.0, "2s"))
TARGET_RATIO, TARGET_CPU = 1.5, 0.15
# The console script's entry point, with this checkout first; at exit the process writes its own CPU seconds.
CHILD = (
    "import atexit, json, resource, sys\n"
    "_path = sys.argv.pop(1)\n"
    "def _cpu():\n"
    "    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "    with open(_path, 'w') as f:\n"
    "        json.dump({'self': me.ru_utime + me.ru_stime, 'children': kids.ru_utime + kids.ru_stime}, f)\n"
    "atexit.register(_cpu)\n"
    "sys.argv[0] = 'orchestrator'\n"
    "from orchestrator.entry import main\n"
    "main()\n"
)


def config(cloud: MockCloud, work: Path, name: str, replicas: int, interval: str) -> Path:
    import yaml

    data = {
        "name": name,
        "replicas": replicas,
        "parallel": replicas,
        "provider": {"plan": "^GPU-8xCPU-64GB-1xL40S$", "storage_gb": 50},
        "ssh": {"user": cloud.user, "port": cloud.ssh_port, "private_key": str(cloud.client_key),
                "connect_timeout": "60s"},
        "engine": {
            "kind": "vllm", "model": "Qwen/Qwen2.5-0.5B-Instruct", "served_name": "qwen-mini",
            "install": {"method": "docker", "image": "vllm/vllm-openai:v0.11.0"},
            "health": {"timeout": "120s", "interval": interval},
        },
        "monitoring": {"prometheus_config": str(work / "prom" / "prometheus.yml"), "promtool": "never"},
    }  # fmt: skip
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def machine_busy() -> float:
    """CPU seconds this machine has spent busy (all CPUs, every process) since boot: /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run(env: dict[str, str], work: Path, *args: str) -> tuple[float, dict[str, float]]:
    cpu = work / "cpu.json"
    busy = machine_busy()
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(cpu), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    wall = time.monotonic() - started
    machine = machine_busy() - busy
    if proc.returncode != 0:
        raise SystemExit(f"`orchestrator {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return wall, json.loads(cpu.read_text()) | {"machine": machine}


def main() -> None:
    root = new_root("orch-bench-fleet-")
    work = Path(tempfile.mkdtemp(prefix="orch-bench-fleet-work-"))
    results: list[tuple[float, list[tuple[int, float, dict[str, float]]]]] = []
    try:
        with MockCloud(root, hosts=N) as cloud:
            # As installed: bytecode cached (some machines set PYTHONDONTWRITEBYTECODE, which makes every Python
            # start, each fake upctl call included, compile its modules again); written here before the first case.
            env = {k: v for k, v in os.environ.items() if not k.startswith("UPCLOUD_")}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            subprocess.run([sys.executable, "-m", "compileall", "-q", "orchestrator", "mockcloud"], cwd=REPO,
                           env=env, check=True, capture_output=True)  # fmt: skip
            env |= {k: v for k, v in cloud.env().items() if k != "PYTHONDONTWRITEBYTECODE"}
            env |= {"ORCHESTRATOR_HOME": str(work / "home"), "VLLM_API_KEY": "sk-bench-key"}
            for delay, interval in CASES:
                for h in cloud.hosts:
                    h.set_knobs(engine_startup_delay=delay)
                rows: list[tuple[int, float, dict[str, float]]] = []
                for replicas in (1, N):
                    name = f"bench-d{delay:.0f}-r{replicas}"
                    wall, cpu = run(env, work, "deploy", str(config(cloud, work, name, replicas, interval)))
                    rows.append((replicas, wall, cpu))
                    run(env, work, "teardown", name, "--yes")
                    left = read_state(cloud.upctl_home).get("servers") or {}
                    assert not left, f"teardown left servers: {left}"
                results.append((delay, rows))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    for delay, rows in results:
        report(delay, rows)


def report(delay: float, rows: list[tuple[int, float, dict[str, float]]]) -> None:
    print(f"fleet deploy on the mock cloud: engine start-up {delay:.0f} s, docker install (no pip), "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'replicas':>8}  {'wall s':>7}  {'own CPU s':>9}  {'per replica':>11}  {'upctl CPU s':>11}  "
          f"{'hosts CPU s':>11}  {'machine busy':>12}")  # fmt: skip
    cpus = os.cpu_count() or 1
    for replicas, wall, cpu in rows:
        hosts = max(0.0, cpu["machine"] - cpu["self"] - cpu["children"])
        print(f"{replicas:>8}  {wall:>7.2f}  {cpu['self']:>9.2f}  {cpu['self'] / replicas:>11.3f}  "
              f"{cpu['children']:>11.2f}  {hosts:>11.2f}  {cpu['machine'] / (wall * cpus):>11.0%}")  # fmt: skip
    (_, w1, c1), (_, wn, cn) = rows
    print(f"wall ratio replicas {N} / 1: {wn / w1:.2f}x (target <= {TARGET_RATIO}x); "
          f"wall({N}) - wall(1): {wn - w1:.1f} s")  # fmt: skip
    print(f"orchestrator CPU per replica at {N}: {cn['self'] / N:.3f} s (target <= {TARGET_CPU} s); "
          f"per added replica (CPU({N}) - CPU(1)) / {N - 1}: {(cn['self'] - c1['self']) / (N - 1):.3f} s")  # fmt: skip
    print(f"the simulation's own CPU at {N}: fake upctl (a Python process per call) {cn['children']:.1f} s, mock "
          f"hosts (sshd, fake docker/nvidia-smi/sudo, mock engines) {cn['machine'] - cn['self'] - cn['children']:.1f} "
          f"s: with the orchestrator's, {cn['machine'] / cpus:.1f} s of wall on {cpus} CPUs at the least "
          "(a real upctl waits on the API, a real host on its GPU and disks)")  # fmt: skip
    print()


if __name__ == "__main__":
    main()
