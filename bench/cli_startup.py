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
  without typer (entry.py) but validate the config with pydantic: its import and first model (pydantic-core,
  annotated-types; its plugin look-up is off and its plugin loader, which imports importlib.metadata, replaced
  by entry.py), the config's ~30 models, PyYAML, the plan's dataclasses (~40 frozen ones) and the planning itself.
Each case runs two ways, their runs interleaved: from this checkout (`from orchestrator.entry import main; main()`
with the checkout first on sys.path, in this venv: its editable install's import hook runs at site start-up), and
as a user has it, the targets' condition: the `orchestrator` console script of this checkout's wheel, pip-installed
(bytecode compiled) in a fresh venv whose dependencies come from this venv's site-packages. Each has its own floor
(`python -c pass`). Figures on a loaded machine vary a lot: read the min column too.
`python bench/cli_startup.py [RUNS]` (builds the wheel first: ~10 s).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


Figures = tuple[float, float, float]


def medians_ms(ways: list[list[str]], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> list[Figures]:
    """Median / min / max wall ms of each argv in ``ways``, their runs interleaved (one of each, RUNS times), so a
    change in the machine's load moves them alike."""

    def once(argv: list[str]) -> float:
        t0 = time.perf_counter()
        rc = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        if rc not in ok:
            raise SystemExit(f"{argv} exited {rc}")
        return (time.perf_counter() - t0) * 1000

    for argv in ways:
        once(argv)  # warm-up: bytecode written, files in the page cache
    times: list[list[float]] = [[] for _ in ways]
    for _ in range(RUNS):
        for argv, got in zip(ways, times, strict=True):
            got.append(once(argv))
    return [(statistics.median(t), min(t), max(t)) for t in times]


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


NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".demo", ".*_cache")


def installed_cli(tmp: Path) -> list[str]:
    """The `orchestrator` console script of this checkout's wheel, pip-installed (bytecode compiled, as pip does)
    in a fresh venv under ``tmp``; its dependencies come from this interpreter's site-packages through a .pth file
    of plain path lines, so the editable install's import hook there (~13 ms of every start) does not run."""
    src, dist, venv = tmp / "src", tmp / "dist", tmp / "venv"
    shutil.copytree(REPO, src, symlinks=True, ignore=NOT_SOURCE)  # setuptools writes build/ into the tree it builds
    pip = [sys.executable, "-m", "pip"]
    quiet: dict[str, Any] = {"check": True, "capture_output": True}
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(dist), str(src)],
                   **quiet)  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], **quiet)
    vpy = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(vpy), "install", "--no-deps", "--no-index", "-q", *dist.glob("*.whl")],
                   **quiet)  # fmt: skip
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(vpy), "-c", purelib], text=True, **quiet).stdout.strip())
    deps = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    (site / "dev-deps.pth").write_text("".join(f"{p}\n" for p in deps))
    return [str(venv / "bin" / "orchestrator")]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        home = Path(tmp) / "home"
        name = one_deployment(home)
        env = bench_env(home)
        wheel = installed_cli(Path(tmp) / "wheel")
        ssh_env = env | {"PATH": f"{stub_ssh(Path(tmp) / 'bin')}:{env.get('PATH', '/usr/bin:/bin')}"}
        cases = {
            "python -c pass (floor)": [],
            "--version": ["--version"],
            "--help": ["--help"],
            "status --local": ["status", "--local"],
            f"status {name} --local": ["status", name, "--local"],
            f"status {name} --json --local": ["status", name, "--json", "--local"],
            f"status {name} (live; no target: network)": ["status", name],
            f"logs {name} (no pinned key: exit 5)": ["logs", name],
            "logs pinned (a stub ssh)": ["logs", "pinned"],
            "ssh pinned -- true (a stub ssh)": ["ssh", "pinned", "--", "true"],
            "validate configs/demo.yaml": ["validate", "configs/demo.yaml"],
            "deploy --dry-run": ["deploy", "configs/vllm-l40s.yaml", "--dry-run"],
            f"teardown {name} --dry-run": ["teardown", name, "--dry-run"],
        }
        floors = [[sys.executable, "-c", "pass"], [str(Path(wheel[0]).parent / "python"), "-c", "pass"]]
        print(f"CLI start-up, {RUNS} runs each, one deployment in ORCHESTRATOR_HOME (ms); targets against the wheel")
        print(f"  {'':<58} {'checkout':>8} {'wheel (installed): median':>26} {'min':>7} {'max':>7}")
        for label, args in cases.items():
            ok = (5,) if "exit 5" in label else (0,)
            ways = floors if not args else [[*CLI, *args], [*wheel, *args]]
            (dev, _, _), (med, lo, hi) = medians_ms(ways, ssh_env if "stub ssh" in label else env, ok)
            first = label.split(" ", 1)[0]
            target = TARGETS_MS.get(first if first in ("status", "logs", "ssh") else label)
            if "no target" in label:
                target = None
            flag = ""
            if target is not None:
                flag = f"  OK (<= {target:.0f} ms)" if med <= target else f"  OVER the {target:.0f} ms target"
            shown = label if label.startswith("python") else f"orchestrator {label}"
            print(f"  {shown:<58} {dev:8.1f} {med:26.1f} {lo:7.1f} {hi:7.1f}{flag}")
        print(
            "status, ssh and logs start without typer and pydantic (entry.py, state_doc.py, engines/logs.py); the\n"
            "usual dry runs and validate without typer (entry.py), with pydantic (it validates the config); typer\n"
            "builds a pydantic TypeAdapter per parameter (typer >= 0.20), so every other command pays for both."
        )


if __name__ == "__main__":
    main()
