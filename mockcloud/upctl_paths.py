"""pathlib's behaviour on plain strings, for the fake upctl's hot paths (every call is a new python).

Importing pathlib costs ~4 ms (it pulls urllib.parse, ipaddress, ntpath, fnmatch), a seventh of a call. These
helpers give exactly what the code did with ``Path`` before: the same normalised strings (``str(Path(x))``,
shown in error messages), and ``exists``/``is_file``/``is_dir``/``mkdir`` with pathlib's error handling
(ENOENT, ENOTDIR, EBADF and ELOOP mean "no"; any other OSError propagates).
"""

from __future__ import annotations

import errno
import os
import stat

_IGNORED_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)


def pure(text: str) -> str:
    """``str(PurePosixPath(text))``: empty and ``.`` parts dropped; two leading slashes kept, more become one."""
    if text[:2] == "//" and text[2:3] != "/":
        root = "//"
    elif text[:1] == "/":
        root = "/"
    else:
        root = ""
    return root + "/".join(p for p in text.split("/") if p and p != ".") or "."


def join(base: str, name: str) -> str:
    """``str(Path(base) / name)`` for a normalised ``base`` and a plain file name."""
    if base == ".":
        return name
    return base + name if base.endswith("/") else f"{base}/{name}"


def parent(path: str) -> str:
    """``str(Path(path).parent)`` for a normalised ``path`` (a root or ``.`` is its own parent)."""
    root = "//" if path[:2] == "//" else "/" if path[:1] == "/" else ""
    rest = path[len(root) :]
    if not rest or rest == ".":
        return path
    return root + rest.rpartition("/")[0] or "."


def _mode(path: str) -> int | None:
    try:
        return os.stat(path).st_mode
    except OSError as exc:
        if exc.errno not in _IGNORED_ERRNOS:
            raise
        return None
    except ValueError:  # a path that cannot be encoded
        return None


def exists(path: str) -> bool:
    return _mode(path) is not None


def is_file(path: str) -> bool:
    mode = _mode(path)
    return mode is not None and stat.S_ISREG(mode)


def is_dir(path: str) -> bool:
    mode = _mode(path)
    return mode is not None and stat.S_ISDIR(mode)


def unlink(path: str, *, missing_ok: bool = False) -> None:
    """``Path(path).unlink(missing_ok=missing_ok)``."""
    try:
        os.unlink(path)
    except FileNotFoundError:  # noqa: SIM105 - contextlib is one more import on a hot path
        if not missing_ok:
            raise


def mkdir(path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
    """``Path(path).mkdir(parents=parents, exist_ok=exist_ok)`` for a normalised ``path``."""
    try:
        os.mkdir(path, 0o777)
    except FileNotFoundError:
        if not parents or parent(path) == path:
            raise
        mkdir(parent(path), parents=True, exist_ok=True)
        mkdir(path, exist_ok=exist_ok)
    except OSError:
        # pathlib does not rely on EEXIST either: the system may report EACCES or EROFS first
        if not exist_ok or not is_dir(path):
            raise
