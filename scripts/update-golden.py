#!/usr/bin/env python3
"""Regenerate tests/golden/: the `deploy`/`redeploy`/`teardown --dry-run` transcripts of every config in configs/.

Run it after a change that is meant to change plans, then review `git diff tests/golden/` like code:
    /work/main/.venv/bin/python scripts/update-golden.py      (or: .venv/bin/python scripts/update-golden.py)
tests/test_dry_run.py compares against these files and never writes them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.golden_cases import GOLDEN, cases, run_case  # noqa: E402


def main() -> int:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    wanted = set()
    changed = 0
    for case in cases():
        with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
            text = run_case(case, Path(tmp))
        wanted.add(case.golden.name)
        old = case.golden.read_text() if case.golden.exists() else None
        if old != text:
            case.golden.write_text(text)
            changed += 1
            print(f"{'updated' if old is not None else 'created'} {case.golden.relative_to(GOLDEN.parent.parent)}")
    for stale in sorted(GOLDEN.glob("*.txt")):
        if stale.name not in wanted:
            stale.unlink()
            print(f"removed {stale.relative_to(GOLDEN.parent.parent)} (no such case any more)")
    print(f"{len(wanted)} golden files, {changed} changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
