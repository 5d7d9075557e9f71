"""orchestrator: one command from a laptop to a monitored GPU model server on UpCloud, and back down."""

__version__ = "0.1.0"


def installed_version() -> str:
    """The installed distribution's version (wheel or editable install); __version__ when run from a bare checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("orchestrator")
    except PackageNotFoundError:
        return __version__
