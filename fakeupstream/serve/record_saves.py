"""The saves of one recorder: each cassette's, in the order its recordings began.

A recorder saves a connection when it ends and an HTTP exchange when it is
answered, but a cassette must list them in the order they *began*: episodes replay
in connection order, and the key a backend minted comes before the socket that used
it. So each recording takes its :class:`Turn` when it begins, and its save waits for
the one before it. The file writer does the rest (lock, leak guard, atomic write).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..cassette import Episode, HttpExchange
from ..exceptions import RecordError
from ..recordmode import RecordPolicy
from ..storage.file_writer import CassetteWriter, SavedCassette

__all__ = ["SaveQueue", "Turn"]

logger = logging.getLogger("fakeupstream")


@dataclass(frozen=True, slots=True)
class Turn:
    """One recording's place in its cassette's order of saves."""

    previous: asyncio.Future[None] | None
    done: asyncio.Future[None]

    def release(self) -> None:
        """Let the next recording's save go (this one is saved, or never will be)."""
        if not self.done.done():
            self.done.set_result(None)


class SaveQueue:
    """Saves what a recorder relayed into its cassettes, each in order.

    Args:
        writer: writes the files.
        policy: how each save changes the file (replace or append).
        errors: the server's errors; a failed save is appended.
        upstream: the URL recorded against (stored redacted).
        on_saved: called after each save.
        on_error: called when a save failed.
    """

    def __init__(
        self,
        writer: CassetteWriter,
        policy: RecordPolicy,
        errors: list[BaseException],
        *,
        upstream: str,
        on_saved: Callable[[SavedCassette], None] | None = None,
        on_error: Callable[[RecordError], None] | None = None,
    ) -> None:
        self.writer = writer
        self._policy = policy
        self._errors = errors
        self._upstream = upstream
        self._on_saved = on_saved
        self._on_error = on_error
        self._last: dict[str, asyncio.Future[None]] = {}

    def turn(self, name: str) -> Turn:
        """Take the next place in cassette ``name``'s order (when a recording begins)."""
        turn = Turn(self._last.get(name), asyncio.get_running_loop().create_future())
        self._last[name] = turn.done
        return turn

    async def save(
        self,
        name: str,
        recorded: Episode | HttpExchange,
        turn: Turn,
        *,
        model: str | None,
        secrets: Sequence[str],
        now: datetime | None,
        refuse: RecordError | None = None,
    ) -> SavedCassette | RecordError:
        """Save a connection or an exchange into ``name`` once the one before it is.

        Args:
            name: the cassette.
            recorded: what to add.
            turn: its place, taken when it began.
            model: the model recorded with, if known.
            secrets: values the leak guard must not find.
            now: when it began (the cassette's time anchor when it creates the file).
            refuse: save nothing and fail with this (after the turn, like a save).

        Returns:
            what was written, or the error (already logged, kept and reported).
        """
        try:
            if turn.previous is not None:
                await asyncio.wait({turn.previous})  # wait, but never cancel it
            if refuse is not None:
                raise refuse
            saved = await asyncio.to_thread(
                self.writer.save,
                name,
                recorded,
                action=self._policy.save_action(name),
                upstream=self._upstream,
                model=model,
                secrets=secrets,
                now=now,
            )
        except RecordError as exc:
            return self._failed(exc)
        except Exception as exc:  # a bug: report it like one
            logger.exception("recording %r: saving failed", name)
            return self._failed(RecordError(f"saving cassette {name!r} failed: {exc!r}"))
        finally:
            turn.release()
        self._policy.saved(name)
        logger.debug(
            "recorded %s (frames: %d, connections: %d, HTTP exchanges: %d)",
            saved.path,
            saved.frames,
            saved.connections,
            saved.exchanges,
        )
        if self._on_saved is not None:
            self._on_saved(saved)
        return saved

    def _failed(self, exc: RecordError) -> RecordError:
        logger.error("%s", exc)
        # Kept without its traceback: pytest prints the arguments of every frame of a
        # traceback, and the writer's are the episode with whatever the guard found.
        exc = exc.with_traceback(None)
        exc.__context__ = exc.__cause__ = None
        self._errors.append(exc)
        if self._on_error is not None:
            self._on_error(exc)
        return exc
