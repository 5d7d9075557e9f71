"""Local model files: check a Triton model repository or a TF SavedModel base dir before anything is created."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SKIP = ("__pycache__",)


class ModelFilesError(ValueError):
    """A problem in local model files; ``field`` is the engine config key it belongs to."""

    def __init__(self, message: str, field: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.hint = hint


def is_version_dir(path: Path) -> bool:
    """Triton and TF Serving serve numeric folders; Triton ignores names starting with 0."""
    return path.is_dir() and path.name.isdigit() and not path.name.startswith("0")


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in _SKIP)


def pbtxt_top_level(text: str) -> dict[str, str]:
    """Top-level scalar fields of a protobuf text file (``name: "x"``, ``backend: "python"``); nesting skipped."""
    fields: dict[str, str] = {}
    depth = 0
    for match in re.finditer(r'#[^\n]*|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{}\[\]<>]|([A-Za-z_]\w*)\s*:\s*', text):
        token = match.group(0)
        if token in "{[<":
            depth += 1
        elif token in "}]>":
            depth -= 1
        elif match.group(1) and depth == 0:
            value = re.match(r'"((?:[^"\\]|\\.)*)"|([\w.+-]+)', text[match.end() :])
            if value:
                fields.setdefault(match.group(1), value.group(1) if value.group(1) is not None else value.group(2))
    return fields


def triton_models(repo: Path, wanted: Sequence[str] = ()) -> list[str]:
    """Check a Triton model repository; return the models that must become ready (``wanted``, or all)."""
    field = "model_repository"
    if not repo.is_dir():
        raise ModelFilesError(f"model repository not found: {repo}", field, "point it at a local directory")
    models = _subdirs(repo)
    if not models:
        raise ModelFilesError(f"no model directories in {repo}", field, "layout: <repo>/<model>/config.pbtxt, 1/")
    for model in models:
        config = model / "config.pbtxt"
        if not config.is_file():
            raise ModelFilesError(
                f"model {model.name!r} has no config.pbtxt ({config})",
                field,
                "every model directory needs a config.pbtxt naming its backend or platform",
            )
        try:
            name = pbtxt_top_level(config.read_text(errors="replace")).get("name")
        except OSError as exc:
            raise ModelFilesError(f"cannot read {config}: {exc.strerror}", field) from None
        if name is not None and name != model.name:
            raise ModelFilesError(
                f"{config} says name: {name!r}, but its directory is {model.name!r}",
                field,
                "Triton requires the config's name to match the directory name (or omit name)",
            )
        if not any(is_version_dir(v) for v in model.iterdir()):
            raise ModelFilesError(
                f"model {model.name!r} has no version directory in {model}",
                field,
                "add a numeric version folder such as 1/ (names starting with 0 are ignored)",
            )
    names = [m.name for m in models]
    for want in wanted:
        if want not in names:
            raise ModelFilesError(f"model {want!r} is not in {repo} (found: {', '.join(names)})", "models")
    return list(wanted) or names


def saved_model_versions(base: Path) -> list[int]:
    """Check a TF Serving model base dir (numeric version folders, each a SavedModel); return the versions."""
    field = "saved_model"
    if not base.is_dir():
        raise ModelFilesError(f"SavedModel directory not found: {base}", field, "point it at a local directory")
    versions = [d for d in _subdirs(base) if d.name.isdigit()]
    if not versions:
        raise ModelFilesError(
            f"no numeric version directory in {base}",
            field,
            "TF Serving expects <dir>/<version>/saved_model.pb, e.g. my_model/1/saved_model.pb",
        )
    for version in versions:
        if not any((version / f).is_file() for f in SAVED_MODEL_FILES):
            raise ModelFilesError(
                f"version {version.name} has no saved_model.pb or saved_model.pbtxt ({version})",
                field,
                "export the model with tf.saved_model.save(model, '<dir>/<version>')",
            )
    return sorted(int(v.name) for v in versions)


def files_under(root: Path) -> list[tuple[Path, str]]:
    """Every file to upload below ``root`` as (local path, POSIX path relative to root), sorted; dotfiles skipped."""
    found: list[tuple[Path, str]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP)
        for name in sorted(files):
            if not name.startswith("."):
                path = Path(folder) / name
                found.append((path, path.relative_to(root).as_posix()))
    return sorted(found, key=lambda item: item[1])


def dirs_under(root: Path) -> list[str]:
    """Every directory below ``root`` (POSIX, relative), parents first, for ``mkdir -p`` on the host."""
    rels = {Path(rel).parent.as_posix() for _, rel in files_under(root)}
    for rel in list(rels):
        rels.update(p.as_posix() for p in Path(rel).parents)
    return sorted(r for r in rels if r not in ("", "."))


def model_dirs(repo: Path) -> list[str]:
    """The model directory names in a Triton repository (empty when it is not there)."""
    return [d.name for d in _subdirs(repo)] if repo.is_dir() else []
