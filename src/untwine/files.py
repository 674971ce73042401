"""Writing files so that a crash, a kill or a full disk never leaves a half-written one, and a
failed write reads as one line saying what to do.

Every file untwine writes (run-folder files, pictures, reports) goes through ``atomic_write``:
a temporary sibling is written, fsynced and renamed over the target, so the old file stays
whole until the new one is complete. The temporary file is created as ``open()`` would create
it (mode 0666 less the umask, e.g. 0644), not owner-only as ``tempfile.mkstemp`` makes it, so
run folders and reports are as readable as any other file the user writes.
"""

from __future__ import annotations

import errno
import io
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from untwine.errors import UntwineError


class WriteError(UntwineError):
    """A file could not be written (disk full, no permission, a folder in the way); the old
    file, if any, is untouched. Callers may add how to continue (e.g. resume a run)."""


_FIXES = {
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is exhausted; free some space",
    errno.EACCES: "permission denied; choose a folder you can write to or fix its permissions",
    errno.EPERM: "permission denied; choose a folder you can write to or fix its permissions",
    errno.EROFS: "the file system is read-only; choose another folder",
    errno.EISDIR: "a folder is in the way; choose a file name",
    errno.ENOTDIR: "a file is in the way of a folder on that path; choose another path",
    errno.EEXIST: "a file is in the way of a folder on that path; choose another path",
    errno.ENOENT: "that folder cannot be made there; choose a path you can write to",
}


def write_error(path: str | Path, err: OSError) -> WriteError:
    """The one-line error for an ``OSError`` raised while writing ``path``."""
    fix = _FIXES.get(err.errno or -1, f"{err.strerror or err}")
    return WriteError(f"cannot write {path}: {fix}")


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write a file via ``write(handle)`` to a temporary sibling, fsync it, then rename it over.

    An ``OSError`` (disk full, permission denied, ...) becomes a ``WriteError`` naming the path
    and the fix; the temporary file is removed and the old file, if any, stays as it was.
    """
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"cannot write {path}: it is a folder; give a file name")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_sibling(path)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise write_error(path, err) from err
    except BaseException:
        _remove(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda h: h.write(text.encode()))


def _create_sibling(path: Path) -> tuple[int, str]:
    """A new, exclusively created ``.NAME.RANDOM.tmp`` beside ``path``, open for writing; the
    kernel applies the umask to mode 0666 as for any new file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def _remove(tmp: str | None) -> None:
    if tmp is not None:
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:
            pass
