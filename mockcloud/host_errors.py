"""Mock GPU hosts: MockHostError (a host could not be set up or torn down) and run_setup, which raises it."""

from __future__ import annotations

import subprocess


class MockHostError(RuntimeError):
    """A mock host could not be set up or torn down."""


def run_setup(argv: list[str], what: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise MockHostError(f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n{proc.stderr.strip()}")
    return proc.stdout
