"""Record modes: when a connection is recorded against the real API, and how it is saved.

The four modes are the ones pytest-recording (and vcrpy) users know, with one
difference that WebSockets impose: the unit recorded is a whole *connection*
(an :class:`~fakeupstream.cassette.Episode`), never a frame spliced into a
recorded one.

- ``none`` (the default): never record; a missing cassette is an error.
- ``once``: record the connections to a cassette that did not exist when the
  server first needed it; each is appended (the first one creates the file).
- ``new_episodes``: replay nothing of the cassette; append every connection as a
  new episode after the existing ones.
- ``all``: re-record: the first connection saved in this server run replaces
  the file, later ones are appended to it.

So ``once`` records every connection of the first run that needs a missing
cassette (a test that reconnects gets two episodes), and ``all`` re-records a
cassette from scratch once per run. The decision is made once per cassette per
server run (:func:`should_record`), so a cassette that ``once`` has just
created is still recorded, not replayed, for the rest of that run.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

__all__ = [
    "RecordMode",
    "RecordPolicy",
    "SaveAction",
    "parse_record_mode",
    "save_action",
    "should_record",
]


class RecordMode(StrEnum):
    """When connections are recorded; see the module docstring."""

    NONE = "none"
    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    ALL = "all"


class SaveAction(StrEnum):
    """What saving one recorded connection does to the cassette file."""

    REPLACE = "replace"
    APPEND = "append"


def parse_record_mode(text: str) -> RecordMode:
    """Read a record mode from user input (a command-line flag or an ini value).

    Raises:
        ValueError: ``text`` is not a mode; the message lists the valid ones.
    """
    try:
        return RecordMode(text.strip().lower())
    except ValueError:
        valid = ", ".join(mode.value for mode in RecordMode)
        raise ValueError(f"unknown record mode {text!r}; expected one of: {valid}") from None


def should_record(mode: RecordMode, cassette_exists: bool) -> bool:
    """Tell whether connections to a cassette are recorded (``False``: replayed).

    Args:
        mode: the record mode.
        cassette_exists: whether the cassette file existed when the server first
            needed it in this run.
    """
    if mode is RecordMode.NONE:
        return False
    if mode is RecordMode.ONCE:
        return not cassette_exists
    return True


def save_action(mode: RecordMode, first_save_of_run: bool) -> SaveAction:
    """How a recorded connection is saved.

    Only ``all`` replaces a cassette, and only with the first connection saved in
    this server run; everything else appends. (``once`` appends too: the file did
    not exist, so its first save creates it, and if a parallel worker created it
    meanwhile, appending keeps both recordings instead of dropping one.)

    Args:
        mode: the record mode (not ``none``: nothing is saved then).
        first_save_of_run: no connection to this cassette has been saved yet in
            this server run.
    """
    if mode is RecordMode.ALL and first_save_of_run:
        return SaveAction.REPLACE
    return SaveAction.APPEND


class RecordPolicy:
    """The one place that decides, per cassette, whether a server run records or replays.

    Decided the first time a cassette is needed in the run, from whether it existed
    then (asked through ``exists``, which the storage layer supplies), and kept for
    the rest of the run; see :func:`should_record`.

    Args:
        mode: the record mode.
        exists: tells whether a cassette exists now.
    """

    def __init__(self, mode: RecordMode, exists: Callable[[str], bool]) -> None:
        self.mode = mode
        self._exists = exists
        self._decided: dict[str, bool] = {}
        self._saved: set[str] = set()

    def records(self, name: str) -> bool:
        """Tell whether connections to cassette ``name`` are recorded (else replayed)."""
        decided = self._decided.get(name)
        if decided is None:
            decided = self._decided[name] = should_record(self.mode, self._exists(name))
        return decided

    def save_action(self, name: str) -> SaveAction:
        """How the next recorded connection of ``name`` is saved (see :func:`save_action`)."""
        return save_action(self.mode, first_save_of_run=name not in self._saved)

    def saved(self, name: str) -> None:
        """A connection of ``name`` was saved: later ones in this run are appended."""
        self._saved.add(name)
