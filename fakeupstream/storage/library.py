"""Find, load and write cassette files in a directory (the persister)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..cassette import Cassette, valid_name
from ..exceptions import CassetteError, CassetteNotFound
from .cassette_file import dump_cassette, load_cassette

__all__ = ["SUFFIX", "CassetteLibrary", "bundled_cassette_dir"]

SUFFIX = ".yaml"
_MAX_PATHS = 4096


def bundled_cassette_dir() -> Path:
    """The cassettes shipped with fakeupstream.

    In a wheel they are package data (``fakeupstream/cassettes``); in a checkout
    (an editable install) they are the top-level ``cassettes/`` directory.
    """
    package = Path(__file__).resolve().parent.parent
    packaged = package / "cassettes"
    if packaged.is_dir():
        return packaged
    return package.parent / "cassettes"


class CassetteLibrary:
    """The cassettes in one directory, by name (the file stem), loaded on demand.

    Loads are cached and reloaded when the file changes, so an edited cassette
    takes effect on the next connection without restarting the server.
    """

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else bundled_cassette_dir()
        self._cache: dict[str, tuple[tuple[int, int], Cassette]] = {}
        self._paths: dict[str, Path] = {}  # valid names already seen: checked once per name
        # Malformed files are remembered too, so one is parsed once per change, not
        # once per connection (a large one would cost that much every time).
        self._failed: dict[str, tuple[tuple[int, int], CassetteError]] = {}

    def names(self) -> list[str]:
        """The cassette names, sorted; those in subdirectories as ``dir/name``."""
        if not self.directory.is_dir():
            return []
        found = (
            path.relative_to(self.directory).with_suffix("").as_posix()
            for path in self.directory.rglob("*" + SUFFIX)
            if path.is_file()
        )
        return sorted(name for name in found if valid_name(name))

    def path_for(self, name: str) -> Path:
        """Where cassette ``name`` lives (whether or not it exists yet)."""
        path = self._paths.get(name)
        if path is not None:
            return path
        if not valid_name(name):
            raise CassetteNotFound(name, self.names(), self.directory)
        if len(self._paths) >= _MAX_PATHS:
            self._paths.clear()
        path = self._paths[name] = self.directory / f"{name}{SUFFIX}"
        return path

    def exists(self, name: str) -> bool:
        """Tell whether cassette ``name`` exists."""
        return valid_name(name) and self.path_for(name).is_file()

    def is_current(self, name: str) -> bool:
        """Tell whether :meth:`load` would answer ``name`` from memory, without parsing.

        True when the file is unchanged since it was last loaded (or last failed to
        load). It costs one ``stat``, so a server can ask on its event loop and only
        hand real parsing to a thread.
        """
        path = self._paths.get(name)
        if path is None:
            return False
        try:
            stat = path.stat()
        except OSError:
            return False
        key = (stat.st_mtime_ns, stat.st_size)
        return any(
            entry is not None and entry[0] == key
            for entry in (self._cache.get(name), self._failed.get(name))
        )

    def cached(self, name: str) -> Cassette | None:
        """What :meth:`load` would answer from memory, with one ``stat`` and no parsing:
        the cassette, or ``None`` when the file must be read (not loaded yet, or changed).

        Raises:
            CassetteError: the file is unchanged since its last load, which failed.
        """
        path = self._paths.get(name)
        entry, failed = self._cache.get(name), self._failed.get(name)
        if path is None or (entry is None and failed is None):
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        if entry is not None and entry[0] == key:
            return entry[1]
        if failed is not None and failed[0] == key:
            old = failed[1]
            raise CassetteError(old.problem, path=old.path, line=old.line, column=old.column)
        return None

    def load(self, name: str) -> Cassette:
        """Load cassette ``name``.

        Raises:
            CassetteNotFound: there is no such cassette (the error lists those that exist).
            CassetteError: the file is malformed.
        """
        path = self.path_for(name)
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise CassetteNotFound(name, self.names(), self.directory) from None
        except OSError as exc:
            raise CassetteError(f"cannot read the cassette: {exc}", path=path) from None
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        failed = self._failed.get(name)
        if failed is not None and failed[0] == key:
            old = failed[1]
            raise CassetteError(old.problem, path=old.path, line=old.line, column=old.column)
        try:
            cassette = load_cassette(path)
        except CassetteError as exc:
            self._failed[name] = (key, exc)
            raise
        self._failed.pop(name, None)
        if cassette.name != name:  # in a subdirectory: the file's stem is only the last part
            cassette = dataclasses.replace(cassette, name=name)
        self._cache[name] = (key, cassette)
        return cassette

    def save(self, cassette: Cassette) -> Path:
        """Write ``cassette`` as ``<name>.yaml``, atomically; return the path."""
        path = self.path_for(cassette.name)
        dump_cassette(cassette, path)
        self._cache.pop(cassette.name, None)
        return path
