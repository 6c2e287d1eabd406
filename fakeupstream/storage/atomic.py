"""Write a file so readers see the old content or the new one, never half of it."""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["TEMPORARY_PATTERN", "remove_temporaries", "write_atomically"]

TEMPORARY_PATTERN = ".*.tmp"
"""What every temporary file written here matches (put it in ``.gitignore``)."""


def _read_umask() -> int:
    # The only portable way to read the umask sets it; done once, at import, before
    # any thread of ours could create a file meanwhile.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_atomically(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8), atomically.

    The data goes to a temporary file in the same directory (``.NAME.*.tmp``, which
    :data:`TEMPORARY_PATTERN` matches), is
    flushed to disk, then renamed over ``path``: an atomic replace on POSIX and
    Windows. On any failure the temporary file is removed and ``path`` is untouched.
    The file gets the mode of the one it replaces, or a new file's usual mode
    (``0o666`` less the umask, e.g. ``0o644``), not the temporary file's ``0o600``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # POSIX
            os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_temporaries(path: Path) -> int:
    """Remove what killed writes of ``path`` left behind (``.NAME.*.tmp``); return how many.

    A process killed between creating its temporary file and renaming it leaves the
    file there, as big as what it was writing. Call this only while no other writer of
    ``path`` can be running (e.g. under the cassette's lock): it cannot tell an
    abandoned file from one being written.
    """
    removed = 0
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed += 1
    return removed
