"""$ORCHESTRATOR_HOME/known_hosts: every deployment's pinned host key, so plain OpenSSH can check it too.

    ssh -o UserKnownHostsFile=$ORCHESTRATOR_HOME/known_hosts -o StrictHostKeyChecking=yes user@ip

One line per deployment's server in OpenSSH's format (``ip`` for port 22, ``[ip]:port`` otherwise), tagged
``orchestrator:NAME`` in the comment field so that a re-pin replaces it and a forgotten deployment's goes.
The file is 0600 and replaced atomically (WriteLocal); the steps read, merge and write it as actions.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.state_doc import orchestrator_home

if TYPE_CHECKING:  # imported where used: `orchestrator ssh` reads this module on its fast start-up path
    from orchestrator.actions import Action, Result


def path() -> Path:
    return orchestrator_home() / "known_hosts"


def host_field(ip: str, port: int) -> str:
    return ip if port == 22 else f"[{ip}]:{port}"  # OpenSSH's own form (IPv6 too: brackets only with a port)


def _tag(name: str) -> str:
    return f"orchestrator:{name}"


def without(text: str, name: str) -> list[str]:
    """The file's lines minus this deployment's entry (other lines, the user's own included, stay)."""
    return [ln for ln in text.splitlines() if ln.strip() and ln.split()[-1] != _tag(name)]


def with_entry(text: str, name: str, ip: str, port: int, key_line: str) -> str:
    keytype, b64 = key_line.split()[:2]
    return "\n".join([*without(text, name), f"{host_field(ip, port)} {keytype} {b64} {_tag(name)}"]) + "\n"


# A fleet's replicas connect in threads of one process: each read-merge-write of the file is one at a time.
_EDIT = threading.Lock()


def record(name: str, ip: str, port: int, key_line: str) -> Generator[Action, Result, None]:
    """Actions: put this deployment's pinned key into the file (replacing its old entry)."""
    from orchestrator.actions import ReadLocal, WriteLocal

    with _EDIT:
        current = yield ReadLocal(path())
        text = current.stdout if current.ok else ""
        new = with_entry(text, name, ip, port, key_line)
        if new != text:
            yield WriteLocal(path(), new, 0o600)


def forget(name: str) -> Generator[Action, Result, None]:
    """Actions: remove this deployment's entry (teardown's forget step)."""
    from orchestrator.actions import ReadLocal, WriteLocal

    with _EDIT:
        current = yield ReadLocal(path())
        if not current.ok:
            return
        lines = without(current.stdout, name)
        if len(lines) != len([ln for ln in current.stdout.splitlines() if ln.strip()]):
            yield WriteLocal(path(), "\n".join(lines) + ("\n" if lines else ""), 0o600)
