"""`orchestrator init`: a commented starter config per engine, from the templates shipped in the package."""

from __future__ import annotations

from pathlib import Path

ENGINES = ("vllm", "triton", "tfserving")


def template_dir() -> Path:
    from orchestrator import package_path

    return package_path("templates")


def starter_config(engine: str) -> str:
    """The starter config text for ``engine`` (one of ENGINES)."""
    from orchestrator.errors import ConfigError

    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}", f"choose one of: {', '.join(ENGINES)}")
    return (template_dir() / f"{engine}.yaml").read_text()


def write_starter(engine: str, output: str, *, force: bool) -> Path:
    """Write the starter config to ``output``; an existing file is never replaced unless ``force``."""
    from orchestrator.atomic import write_atomic
    from orchestrator.errors import ConfigError

    text = starter_config(engine)
    path = Path(output).expanduser()
    if not path.parent.is_dir():
        raise ConfigError(f"no such directory: {path.parent}", "create it first, or choose another --output")
    try:
        if force:
            write_atomic(path, text, 0o644, make_dirs=False)
        else:
            with path.open("x") as f:  # O_EXCL: a file that appears meanwhile is not overwritten either
                f.write(text)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; nothing was written", "pass --force to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    return path
