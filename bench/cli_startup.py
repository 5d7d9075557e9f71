"""Benchmark: CLI start-up cost, medians over N runs (default 20), under installed-package conditions.

Cases: the bare interpreter (floor), `--version`, `--help`, `status` (one deployment in a temporary
ORCHESTRATOR_HOME), `validate`, `deploy --dry-run`. Targets (issue 8): --help < 200 ms; status <= 100 ms;
deploy --dry-run <= 200 ms. The numbers are printed, never asserted (no timing assertions in tests).

The CLI is started the way the console script does it (`from orchestrator.entry import main; main()`) with this
checkout first on sys.path, so the figures are this checkout's code even where the venv's editable install points
at another tree. `python bench/cli_startup.py [RUNS]`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
# What the `orchestrator` console script runs (its argv[0] is the program name).
CLI = [sys.executable, "-c", "import sys; sys.argv[0] = 'orchestrator'; from orchestrator.entry import main; main()"]
TARGETS_MS = {"--help": 200.0, "status": 100.0, "deploy --dry-run": 200.0}


# As installed for a user: bytecode caching on (some machines set PYTHONDONTWRITEBYTECODE, which makes every start
# recompile the package), and one warm-up run per case so the .pyc files exist.
def bench_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("UPCLOUD_")}
    env["ORCHESTRATOR_HOME"] = str(home)
    return env


def median_ms(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    def once() -> None:
        subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    once()  # warm-up: bytecode written, files in the page cache
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        once()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times), max(times)


def one_deployment(home: Path) -> str:
    """A deployed record in ``home``, as `deploy` leaves it (server, engine, health, steps, config snapshot)."""
    sys.path.insert(0, str(REPO))
    from orchestrator.config import load_config
    from orchestrator.state import Deployment, EngineRecord, HealthRecord, ServerRecord, StateStore, StepRecord

    config = REPO / "configs" / "vllm-l40s.yaml"
    cfg = load_config(config)
    now = time.time()
    dep = Deployment(
        name=cfg.name,
        config_path=str(config),
        status="deployed",
        server=ServerRecord(
            uuid="00a1b2c3-0000-4000-8000-000000000001", hostname=cfg.name, plan="GPU-8xCPU-64GB-1xL40S",
            zone=cfg.provider.zone, ip="203.0.113.10", state="started", gpu_amount=1, gpu_model="NVIDIA L40S",
        ),
        engine=EngineRecord(
            kind="vllm", model=cfg.engine.model, served_name=cfg.engine.served, endpoint="http://203.0.113.10:8000/v1",
            metrics_url="http://203.0.113.10:8000/metrics", method="pip",
        ),
        health=HealthRecord(ok=True, checked_at=now, detail="200 OK", time_to_healthy=312.0),
        steps={"provision": StepRecord(status="ok", finished_at=now, seconds=95.0)},
        config=cfg.model_dump(mode="json"),
    )  # fmt: skip
    StateStore(home).save(dep)
    return cfg.name


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        home = Path(tmp) / "home"
        name = one_deployment(home)
        env = bench_env(home)
        cases = {
            "python -c pass (floor)": [sys.executable, "-c", "pass"],
            "--version": [*CLI, "--version"],
            "--help": [*CLI, "--help"],
            "status --local": [*CLI, "status", "--local"],
            f"status {name} --local": [*CLI, "status", name, "--local"],
            f"status {name} --json --local": [*CLI, "status", name, "--json", "--local"],
            f"status {name} (live, nothing answers)": [*CLI, "status", name],
            "validate configs/demo.yaml": [*CLI, "validate", "configs/demo.yaml"],
            "deploy --dry-run": [*CLI, "deploy", "configs/vllm-l40s.yaml", "--dry-run"],
        }
        print(f"CLI start-up, {RUNS} runs each, one deployment in ORCHESTRATOR_HOME (median / min / max, ms)")
        for label, argv in cases.items():
            med, lo, hi = median_ms(argv, env)
            target = TARGETS_MS.get(label.split(" ", 1)[0] if label.startswith("status") else label)
            flag = ""
            if target is not None:
                flag = f"  OK (<= {target:.0f} ms)" if med <= target else f"  OVER the {target:.0f} ms target"
            shown = label if label.startswith("python") else f"orchestrator {label}"
            print(f"  {shown:<45} {med:7.1f} {lo:7.1f} {hi:7.1f}{flag}")


if __name__ == "__main__":
    main()
