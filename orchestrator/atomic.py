"""The one atomic file writer: state documents, local files (prometheus.yml, file_sd) and run-metrics textfiles.

A temp file in the target's own directory (dot-prefixed, ``.tmp`` suffix, so a textfile collector or a glob
never reads it), mode set with fchmod before any byte is written, fsync, then ``os.replace`` and an fsync of the
directory. A reader sees the old file or the new one, never half of one.

``keep_existing=True`` (files the user owns, e.g. prometheus.yml): a symlink is followed (the link stays a link),
and the existing file's mode, owner and group are kept. When the new file cannot get that owner (not root) or the
directory is not writable (a root-owned /etc/prometheus with a group-writable file), the file is rewritten in
place instead: same inode, owner and mode, fsynced, but a reader could see it half-written (Prometheus reads it
only on reload, which comes after the write).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def write_atomic(
    path: Path,
    data: str | bytes,
    mode: int = 0o644,
    *,
    keep_existing: bool = False,
    make_dirs: bool = True,
) -> None:
    """Replace ``path`` with ``data`` atomically. Raises OSError; callers map it into their error type."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    target = Path(os.path.realpath(path)) if keep_existing else path
    existing: os.stat_result | None = None
    if keep_existing:
        with contextlib.suppress(FileNotFoundError):
            existing = os.stat(target)
    if existing is not None:
        mode = stat.S_IMODE(existing.st_mode)
    if make_dirs:
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except PermissionError:
        if existing is None:
            raise
        _rewrite_in_place(target, raw)
        return
    try:
        try:
            os.fchmod(fd, mode)
            if existing is not None and (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fd, existing.st_uid, existing.st_gid)
                except PermissionError:
                    # We may not give the file away: keep the owner by writing into the existing inode.
                    os.close(fd)
                    fd = -1
                    Path(tmp).unlink(missing_ok=True)
                    _rewrite_in_place(target, raw)
                    return
            _write_all(fd, raw)
            os.fsync(fd)
        finally:
            if fd >= 0:
                os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _write_all(fd: int, raw: bytes) -> None:
    view = memoryview(raw)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _rewrite_in_place(target: Path, raw: bytes) -> None:
    fd = os.open(target, os.O_WRONLY)
    try:
        _write_all(fd, raw)
        os.ftruncate(fd, len(raw))
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
