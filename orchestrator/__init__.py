"""orchestrator: one command from a laptop to a monitored GPU model server on UpCloud, and back down."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__version__ = "0.1.0"


def package_path(*parts: str) -> Path:
    """A file or folder shipped inside the package (playbooks/, dashboards/, templates/). setuptools installs a
    package as a plain directory (wheel or checkout), so it is a real path beside this module; importlib.resources
    would find the same path at the cost of zipfile's import (~4 ms of every config command)."""
    from pathlib import Path

    return Path(__file__).parent.joinpath(*parts)


def installed_version() -> str:
    """The installed distribution's version (wheel or editable install); __version__ when run from a bare checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("orchestrator")
    except PackageNotFoundError:
        return __version__
