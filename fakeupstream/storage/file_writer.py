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
from ..cassette import Cassette, Episode, FrameStep, HttpExchange, MatchMode, Recorded, valid_name
from ..exceptions import CassetteError, RecordError, SecretLeakError
from ..record_session import rebase_exchange, rebase_times
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
    """What a save wrote: the file, its frame, connection and HTTP exchange counts, and
    the sidecars."""

    name: str
    path: Path
    frames: int
    connections: int
    sidecars: int
    exchanges: int = 0


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
        recorded: Episode | HttpExchange,
        *,
        action: SaveAction,
        upstream: str,
        model: str | None,
        secrets: Sequence[str] = (),
        now: datetime | None = None,
    ) -> SavedCassette:
        """Add ``recorded`` to cassette ``name`` (or replace the file with it).

        A connection is added to the cassette's connections (it replaces the placeholder
        of a cassette that has none yet), an HTTP exchange to its ``http`` list.

        Args:
            name: the cassette.
            recorded: the recorded connection, or HTTP exchange.
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
                    path, name, recorded, action, upstream, model, list(secrets), now
                )
        except OSError as exc:
            raise RecordError(f"cannot write cassette {path}: {exc}") from exc

    def _save_locked(
        self,
        path: Path,
        name: str,
        recorded: Episode | HttpExchange,
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
        kept = existing if action is SaveAction.APPEND else None
        anchor = now
        if kept is not None and kept.recorded.at is not None:
            # One time anchor per file: rebase what is new onto the old one.
            anchor = kept.recorded.at
        episodes, http, simulated = _merged(kept, recorded, round((anchor - now).total_seconds()))
        cassette = Cassette(
            name=name,
            episodes=episodes,
            http=http,
            simulated=simulated,
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
            connections=0 if simulated else len(episodes),
            sidecars=len(rendered.sidecars),
            exchanges=len(http),
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


def _merged(
    existing: Cassette | None, recorded: Episode | HttpExchange, seconds: int
) -> tuple[tuple[Episode, ...], tuple[HttpExchange, ...], bool]:
    """``(episodes, http, simulated)`` once ``recorded`` (moved by ``seconds``) is added.

    A cassette with no connection yet (only HTTP exchanges, or only rules) holds a
    placeholder episode: the first connection recorded takes its place.
    """
    episodes: tuple[Episode, ...] = () if existing is None else existing.episodes
    http = () if existing is None else existing.http
    placeholder = existing is None or existing.simulated
    if isinstance(recorded, HttpExchange):
        return episodes or (Episode(),), (*http, rebase_exchange(recorded, seconds)), placeholder
    episode = rebase_times(recorded, seconds)
    return ((episode,) if placeholder else (*episodes, episode)), http, False
