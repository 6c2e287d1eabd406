"""Save recorded connections into cassette files, safely.

Four promises, in the order :meth:`CassetteWriter.save` keeps them:

1. **No interleaving.** Saving takes an exclusive lock on ``.<name>.lock`` next to
   the cassette (``fcntl.flock``, which holds between processes, e.g. xdist workers,
   and between threads), re-reads the cassette under the lock, and writes it back
   with the new episode before letting go. The lock file is removed on the way out.
2. **No secrets.** The serialized text is scanned by the leak guard
   (:func:`~fakeupstream.redaction.find_leaks`), and so are the decoded binary
   frames and the sidecar payloads (:func:`~fakeupstream.redaction.find_leaks_in_bytes`),
   where a key would only show as base64; any finding refuses the save with
   :class:`SecretLeakError` and nothing at all is written.
3. **Nothing half-written.** Sidecars go first, then the YAML, each through
   :func:`~fakeupstream.storage.atomic.write_atomically` (temporary file, fsync,
   rename): readers see the old cassette or the new one.
4. **Nothing replaced by accident.** Only :attr:`SaveAction.REPLACE` drops the
   episodes already in the file, and an existing file that does not load is
   never overwritten by an append.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .._version import __version__
from ..cassette import Cassette, Episode, FrameStep, MatchMode, Recorded, valid_name
from ..exceptions import CassetteError, RecordError, SecretLeakError
from ..record_session import rebase_times
from ..recordmode import SaveAction
from ..redaction import find_leaks, find_leaks_in_bytes, redact_url
from .atomic import TEMPORARY_PATTERN, remove_temporaries
from .cassette_file import load_cassette, render_cassette, write_cassette
from .library import SUFFIX
from .sidecars import DEFAULT_THRESHOLD, prune_sidecars, sidecar_dir_name

try:  # POSIX
    import fcntl

    _FLOCK = True
except ImportError:  # pragma: no cover - Windows: only threads of one process are serialized
    _FLOCK = False

__all__ = ["CassetteWriter", "SavedCassette", "cassette_lock"]

# Without fcntl, a lock per path still keeps the threads of this process apart.
_LOCAL_LOCKS: dict[Path, threading.Lock] = {}
_LOCAL_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def cassette_lock(directory: Path, name: str) -> Iterator[None]:
    """Hold the exclusive lock of cassette ``name`` (blocking until it is free).

    The lock is ``.<stem>.lock`` next to the cassette file, and it is deleted before
    it is released, so no lock file outlives a save (unless the process is killed).
    """
    target = directory / name
    target.parent.mkdir(parents=True, exist_ok=True)
    path = target.parent / f".{target.name}.lock"
    if not _FLOCK:  # pragma: no cover - exercised on Windows only
        with _LOCAL_LOCKS_GUARD:
            lock = _LOCAL_LOCKS.setdefault(path.resolve(), threading.Lock())
        with lock:
            yield
        return
    while True:
        handle = path.open("a")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            # The previous holder may have deleted the file after we opened it: a lock on
            # a deleted file excludes nobody, so only the file still at `path` counts.
            if _same_file(path, handle.fileno()):
                break
        except BaseException:
            handle.close()
            raise
        handle.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: the next holder re-checks
        handle.close()  # releases the lock


def _same_file(path: Path, fd: int) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)


@dataclass(frozen=True, slots=True)
class SavedCassette:
    """What a save wrote: the file, its frame and connection counts, and the sidecars."""

    name: str
    path: Path
    frames: int
    connections: int
    sidecars: int


class CassetteWriter:
    """Writes recorded episodes into the cassettes of one directory.

    Args:
        directory: where the cassettes are.
        sidecar_threshold: audio payloads longer than this go to sidecar files;
            ``None`` keeps everything inline.
    """

    def __init__(
        self, directory: Path | str, *, sidecar_threshold: int | None = DEFAULT_THRESHOLD
    ) -> None:
        self.directory = Path(directory)
        self.sidecar_threshold = sidecar_threshold

    def path_for(self, name: str) -> Path:
        """The file of cassette ``name``.

        Raises:
            RecordError: ``name`` cannot name a cassette file.
        """
        if not valid_name(name):
            raise RecordError(f"cannot record into {name!r}: not a valid cassette name")
        return self.directory / f"{name}{SUFFIX}"

    def save(
        self,
        name: str,
        episode: Episode,
        *,
        action: SaveAction,
        upstream: str,
        model: str | None,
        secrets: Sequence[str] = (),
        now: datetime | None = None,
    ) -> SavedCassette:
        """Add ``episode`` to cassette ``name`` (or replace the file with it).

        Args:
            name: the cassette.
            episode: the recorded connection.
            action: append to the episodes already saved, or replace them.
            upstream: the URL recorded against (stored redacted).
            model: the model recorded with.
            secrets: values the leak guard must not find (the real key, the client's).
            now: when it was recorded (UTC); the current time by default.

        Raises:
            SecretLeakError: the leak guard found a secret; nothing was written.
            RecordError: the existing cassette cannot be appended to, or the files
                cannot be written.
        """
        path = self.path_for(name)
        now = now or datetime.now(UTC)
        try:
            with cassette_lock(self.directory, name):
                return self._save_locked(
                    path, name, episode, action, upstream, model, list(secrets), now
                )
        except OSError as exc:
            raise RecordError(f"cannot write cassette {path}: {exc}") from exc

    def _save_locked(
        self,
        path: Path,
        name: str,
        episode: Episode,
        action: SaveAction,
        upstream: str,
        model: str | None,
        secrets: list[str],
        now: datetime,
    ) -> SavedCassette:
        # Under the lock no other save of this cassette runs, so any temporary file of
        # it (or of its sidecars) is what a killed save left behind.
        remove_temporaries(path)
        for leftover in (self.directory / sidecar_dir_name(name)).glob(TEMPORARY_PATTERN):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        existing = self._existing(path, strict=action is SaveAction.APPEND)
        anchor = now
        episodes: tuple[Episode, ...] = (episode,)
        if existing is not None and action is SaveAction.APPEND:
            if existing.recorded.at is not None:
                # One time anchor per file: rebase the new episode onto the old one.
                anchor = existing.recorded.at
                episode = rebase_times(episode, round((anchor - now).total_seconds()))
            episodes = (*existing.episodes, episode)
        cassette = Cassette(
            name=name,
            episodes=episodes,
            description=existing.description
            if existing is not None and existing.description
            else f"Recorded from {redact_url(upstream)}"
            + (f" with model {model}" if model else "")
            + ".",
            match=existing.match if existing is not None else MatchMode.TYPE,
            recorded=Recorded(
                at=anchor,
                upstream=redact_url(upstream),
                model=model or (existing.recorded.model if existing is not None else None),
                fakeupstream=__version__,
            ),
        )
        # Sidecars sit next to the file: <stem>.sidecar/, whatever directory it is in.
        rendered = render_cassette(
            cassette, name=path.stem, sidecar_threshold=self.sidecar_threshold
        )
        findings = find_leaks(rendered.text, secrets)
        for number, item in enumerate(episodes):
            for index, step in enumerate(item.timeline):
                if isinstance(step, FrameStep) and isinstance(step.data, bytes):
                    where = f"connection {number + 1}, step {index} ({step.direction.value} binary)"
                    findings.extend(
                        f"{where}, {found}" for found in find_leaks_in_bytes(step.data, secrets)
                    )
        for sidecar in rendered.sidecars:
            findings.extend(
                f"{sidecar.path}: {found}" for found in find_leaks_in_bytes(sidecar.data, secrets)
            )
        if findings:
            raise SecretLeakError(path, findings)
        write_cassette(path, rendered)
        if action is SaveAction.REPLACE:
            prune_sidecars(path.parent, path.stem, (item.path for item in rendered.sidecars))
        return SavedCassette(
            name=name,
            path=path,
            frames=sum(isinstance(step, FrameStep) for item in episodes for step in item.timeline),
            connections=len(episodes),
            sidecars=len(rendered.sidecars),
        )

    def _existing(self, path: Path, *, strict: bool) -> Cassette | None:
        if not path.exists():
            return None
        try:
            return load_cassette(path)
        except CassetteError as exc:
            if not strict:
                return None  # being replaced anyway
            raise RecordError(
                f"cannot append to {path}: it is not a valid cassette ({exc}); fix or delete "
                "it, or re-record it with --record-mode=all"
            ) from exc
