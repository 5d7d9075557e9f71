"""Benchmark: CLI start-up cost, medians over N runs (default 20), under installed-package conditions.

Cases: the bare interpreter (floor), `--version`, `--help`, `status` (one deployment in a temporary
ORCHESTRATOR_HOME), `logs`, `ssh`, `validate`, `deploy --dry-run`, `teardown NAME --dry-run`. Targets (issue 8):
--help < 200 ms; status, logs, ssh <= 100 ms; deploy --dry-run <= 200 ms. The numbers are printed, never asserted
(no timing assertions in tests).

How start-up is measured, per command:
- status: `status --local` (everything but the live checks: interpreter, argument parsing, reading the state,
  the table or the JSON document). `status NAME` (live, the default) is shown too, without a target: it includes
  one upctl call and one engine probe, here against nothing (no upctl on PATH, an unroutable engine address), so
  it measures how fast status gives up, bounded by its timeouts.
- ssh: `ssh pinned -- true` on a deployment with a pinned host key, with an `ssh` on PATH that exits at once
  (/bin/true): everything `orchestrator ssh` does (state, known_hosts file, argv) up to and including starting
  OpenSSH, none of OpenSSH's own connection.
- logs: `logs pinned` with the same stub `ssh`: state, log command from the config snapshot, known_hosts file,
  argv, up to and including starting OpenSSH. `logs NAME` on the deployment without a pinned host key (exit 5)
  is shown too: it stops at that check, the figure older versions were measured with.
- deploy --dry-run: `deploy configs/vllm-l40s.yaml --dry-run` with no record (a first deploy's plan: all twelve
  steps); `teardown NAME --dry-run` plans the removal of the recorded deployment. Both, and `validate`, start
  without typer (entry.py) but validate the config with pydantic, whose import and first model alone take
  ~120 ms here (its own imports: pydantic-core, annotated-types, importlib.metadata; its plugin look-up, an
  entry-point scan of every installed distribution, is turned off by entry.py: ~7 % of this figure);
  then the config's ~30 models (~35 ms to build), PyYAML (~12 ms), the plan's dataclasses (~40 frozen ones,
  ~0.7 ms each to create) and the planning itself (~8 ms).
The floor (`python -c pass`) includes this venv's site start-up (an editable install's import finder, ~20 ms):
compare each figure with it. Figures on a loaded machine vary a lot: read the min column too.

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
TARGETS_MS = {"--help": 200.0, "status": 100.0, "logs": 100.0, "ssh": 100.0, "deploy --dry-run": 200.0}


# As installed for a user: bytecode caching on (some machines set PYTHONDONTWRITEBYTECODE, which makes every start
# recompile the package), and one warm-up run per case so the .pyc files exist.
def bench_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("UPCLOUD_")}
    env["ORCHESTRATOR_HOME"] = str(home)
    return env


def median_ms(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, float, float]:
    def once() -> None:
        rc = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        if rc not in ok:
            raise SystemExit(f"{argv[3:]} exited {rc}")

    once()  # warm-up: bytecode written, files in the page cache
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        once()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times), max(times)


PINNED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchPinnedHostKeyNotARealOne000000000000"


def one_deployment(home: Path) -> str:
    """A deployed record in ``home``, as `deploy` leaves it (server, engine, health, steps, config snapshot), and
    a copy of it named `pinned` whose server has a pinned host key (the `ssh` case)."""
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
    assert dep.server is not None
    pinned = dep.model_copy(update={"name": "pinned", "server": dep.server.model_copy(update={"host_key": PINNED})})
    StateStore(home).save(pinned)
    return cfg.name


def stub_ssh(folder: Path) -> Path:
    """An `ssh` that exits 0 at once: `orchestrator ssh` runs everything up to starting OpenSSH, nothing after."""
    folder.mkdir()
    (folder / "ssh").symlink_to("/bin/true")
    return folder


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        home = Path(tmp) / "home"
        name = one_deployment(home)
        env = bench_env(home)
        ssh_env = env | {"PATH": f"{stub_ssh(Path(tmp) / 'bin')}:{env.get('PATH', '/usr/bin:/bin')}"}
        cases = {
            "python -c pass (floor)": [sys.executable, "-c", "pass"],
            "--version": [*CLI, "--version"],
            "--help": [*CLI, "--help"],
            "status --local": [*CLI, "status", "--local"],
            f"status {name} --local": [*CLI, "status", name, "--local"],
            f"status {name} --json --local": [*CLI, "status", name, "--json", "--local"],
            f"status {name} (live; no target: network)": [*CLI, "status", name],
            f"logs {name} (no pinned key: exit 5)": [*CLI, "logs", name],
            "logs pinned (a stub ssh)": [*CLI, "logs", "pinned"],
            "ssh pinned -- true (a stub ssh)": [*CLI, "ssh", "pinned", "--", "true"],
            "validate configs/demo.yaml": [*CLI, "validate", "configs/demo.yaml"],
            "deploy --dry-run": [*CLI, "deploy", "configs/vllm-l40s.yaml", "--dry-run"],
            f"teardown {name} --dry-run": [*CLI, "teardown", name, "--dry-run"],
        }
        print(f"CLI start-up, {RUNS} runs each, one deployment in ORCHESTRATOR_HOME (median / min / max, ms)")
        for label, argv in cases.items():
            ok = (5,) if "exit 5" in label else (0,)
            med, lo, hi = median_ms(argv, ssh_env if "stub ssh" in label else env, ok)
            first = label.split(" ", 1)[0]
            target = TARGETS_MS.get(first if first in ("status", "logs", "ssh") else label)
            if "no target" in label:
                target = None
            flag = ""
            if target is not None:
                flag = f"  OK (<= {target:.0f} ms)" if med <= target else f"  OVER the {target:.0f} ms target"
            shown = label if label.startswith("python") else f"orchestrator {label}"
            print(f"  {shown:<58} {med:7.1f} {lo:7.1f} {hi:7.1f}{flag}")
        print(
            "status, ssh and logs start without typer and pydantic (entry.py, state_doc.py, engines/logs.py); the\n"
            "usual dry runs and validate without typer (entry.py), with pydantic (it validates the config); typer\n"
            "builds a pydantic TypeAdapter per parameter (typer >= 0.20), so every other command pays for both."
        )


if __name__ == "__main__":
    main()
