"""Benchmark: CLI start-up cost (`orchestrator --help`, `validate`), medians over N runs. Target: --help < 200 ms."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "orchestrator"
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


# As installed for a user: bytecode caching on (some machines set PYTHONDONTWRITEBYTECODE, which makes every start
# recompile the package), and one warm-up run per case so the .pyc files exist.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def median_ms(argv: list[str]) -> tuple[float, float, float]:
    subprocess.run(argv, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    cases = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "orchestrator --help": [str(BIN), "--help"],
        "orchestrator validate configs/demo.yaml": [str(BIN), "validate", "configs/demo.yaml"],
        "orchestrator deploy configs/vllm-l40s.yaml --dry-run": [
            str(BIN),
            "deploy",
            "configs/vllm-l40s.yaml",
            "--dry-run",
        ],
    }
    print(f"CLI start-up, {RUNS} runs each (median / min / max, ms)")
    for name, argv in cases.items():
        med, lo, hi = median_ms(argv)
        flag = ""
        if name == "orchestrator --help":
            flag = "  OK (< 200 ms)" if med < 200 else "  OVER the 200 ms target"
        print(f"  {name:<55} {med:7.1f} {lo:7.1f} {hi:7.1f}{flag}")


if __name__ == "__main__":
    main()
