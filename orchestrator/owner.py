"""Who "we" are on a shared UpCloud account: an installation id kept in $ORCHESTRATOR_HOME, plus user@host.

The id is created once (random, in ``$ORCHESTRATOR_HOME/owner_id``, mode 0600) and labels every server this
installation creates (``orchestrator_owner``), next to a readable ``orchestrator_owner_name=user@host``. Orphans
are only the servers with this id; servers of other ids (colleagues on the same account) or without one (older
versions) are listed apart and never touched unless asked for explicitly. Copying the file to another machine
makes that machine the same owner.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import secrets
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import StateError
from orchestrator.providers.base import OWNER_LABEL_KEY, OWNER_NAME_LABEL_KEY
from orchestrator.state import orchestrator_home

OWNER_FILE = "owner_id"
OWNER_FACT = "owner"  # StepContext.facts key: this run's Owner (set by the session)
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._@-]+")
NAME_MAX = 64  # well inside UpCloud's label value limit; keeps tables readable


@dataclass(frozen=True)
class Owner:
    """This installation on the account: the id its servers are labelled with, and a readable name."""

    id: str
    name: str  # user@host, sanitized for a label value

    def labels(self) -> tuple[tuple[str, str], ...]:
        return ((OWNER_LABEL_KEY, self.id), (OWNER_NAME_LABEL_KEY, self.name))

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name}


# Dry-run on an installation that has never created anything: the id does not exist yet.
PLACEHOLDER = Owner("<owner.id>", "<owner.name>")


def owner_id_path(home: Path | None = None) -> Path:
    return (home or orchestrator_home()) / OWNER_FILE


def sanitize_name(text: str) -> str:
    """A label-safe user@host: letters, digits and ``._@-`` only, at most 64 characters, never empty."""
    clean = _NAME_CHARS.sub("-", text).strip("-.")[:NAME_MAX].strip("-.")
    return clean or "unknown"


def readable_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (containers) and no $USER
        user = f"uid{os.getuid()}"
    return sanitize_name(f"{user}@{socket.gethostname()}")


def _read(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read the owner id {path}: {exc.strerror}", f"make {path} readable") from None
    if not _ID.fullmatch(text):
        raise StateError(
            f"the owner id in {path} is not valid (8-64 letters, digits, '_' or '-')",
            f"restore it from a backup, or remove {path} to start a new owner: servers labelled with the old id "
            "then count as another owner's",
        )
    return text


def load_owner(home: Path | None = None) -> Owner | None:
    """This installation's owner, or None when it has never created one (read-only: for status and dry-run)."""
    found = _read(owner_id_path(home))
    return Owner(found, readable_name()) if found else None


def ensure_owner(home: Path | None = None) -> Owner:
    """This installation's owner, created on first use (atomically: concurrent first runs agree on one id)."""
    path = owner_id_path(home)
    found = _read(path)
    if found:
        return Owner(found, readable_name())
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".owner_id.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(secrets.token_hex(10) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # never replaces: a concurrent first run may have won
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise StateError(
            f"cannot create the owner id {path}: {exc.strerror}",
            f"make {path.parent} writable (or set ORCHESTRATOR_HOME)",
        ) from None
    created = _read(path)
    assert created is not None
    return Owner(created, readable_name())
