"""Recorded server frames in their wire form, encoded once and shared by every connection.

Encoding a recorded event (``json.dumps``) and walking it for time fields
(:func:`~fakeupstream.timeshift.shift_times`) cost more CPU than everything else
the replay engine does for a frame. Neither depends on the connection, only on
the event and on the time shift, which is a whole number of seconds that every
connection opened in the same second shares. So a :class:`WireFrames` is built
per timeline (the planner keeps them) and remembers, for each server step:

- whether the event has a time field at all (most do not: their wire form is
  encoded once and returned as is, whatever the shift);
- the wire form for the last shift asked, for the events that do.

What does depend on the connection (fresh ids, an ``error`` echoing an
``event_id`` the client actually sent) stays with the replay session, which
asks :meth:`WireFrames.encoded` only for the rest.

Other facts about a timeline are worked out once here for the same reason:
what kind each step is (:attr:`WireFrames.kinds`, so the engine's loop over due
steps makes no ``isinstance`` checks), how a report lists a step that a connection
never played (:meth:`WireFrames.unplayed`), and which server steps are of the
event types the session model learns from.
"""

from __future__ import annotations

from collections.abc import Sequence

from .cassette import CloseStep, Direction, FrameStep, JSONObject, Step, encode_event
from .report import Unplayed
from .timeshift import shift_times

__all__ = ["CLIENT_FRAME", "CLOSE", "SERVER_EVENT", "SERVER_RAW", "WireFrames"]

CLIENT_FRAME, SERVER_EVENT, SERVER_RAW, CLOSE = range(4)
"""The kinds of step (:attr:`WireFrames.kinds`): a frame the client sends, a server
event (a JSON object), a raw server frame (text or bytes, sent as recorded), a close."""


def _kind(step: Step) -> int:
    if isinstance(step, CloseStep):
        return CLOSE
    if step.direction is Direction.CLIENT:
        return CLIENT_FRAME
    return SERVER_EVENT if isinstance(step.data, dict) else SERVER_RAW


class WireFrames:
    """The encoded server frames of one timeline (see the module docstring).

    Args:
        steps: the timeline; kept, so the owner can tell it is the same one.
    """

    __slots__ = (
        "_all_unplayed",
        "_plain",
        "_server_types",
        "_shifted",
        "_timed",
        "_unplayed",
        "kinds",
        "steps",
    )

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = steps
        self.kinds: tuple[int, ...] = tuple(_kind(step) for step in steps)
        """The kind of each step: :data:`CLIENT_FRAME`, :data:`SERVER_EVENT`, ..."""
        self._plain: dict[int, str] = {}
        self._timed: dict[int, bool] = {}
        self._shifted: dict[int, tuple[int, str]] = {}
        self._unplayed: dict[int, Unplayed] = {}
        self._all_unplayed: tuple[Unplayed, ...] | None = None
        self._server_types: dict[frozenset[str], frozenset[int]] = {}

    def unplayed(self, index: int) -> Unplayed:
        """How a report lists step ``index`` when a connection never played it."""
        unplayed = self._unplayed.get(index)
        if unplayed is None:
            step = self.steps[index]
            client = isinstance(step, FrameStep) and step.direction is Direction.CLIENT
            unplayed = self._unplayed[index] = Unplayed(
                step=index,
                line=step.line,
                direction="client" if client else "server",
                summary=step.summary(),
            )
        return unplayed

    def unplayed_from(self, start: int) -> Sequence[Unplayed]:
        """:meth:`unplayed` for every step from ``start`` on."""
        if self._all_unplayed is None:
            self._all_unplayed = tuple(self.unplayed(index) for index in range(len(self.steps)))
        return self._all_unplayed[start:]

    def server_steps_of(self, types: frozenset[str]) -> frozenset[int]:
        """The indices of the server events whose ``type`` is in ``types``."""
        found = self._server_types.get(types)
        if found is None:
            found = self._server_types[types] = frozenset(
                index
                for index, step in enumerate(self.steps)
                if isinstance(step, FrameStep)
                and step.direction is Direction.SERVER
                and step.event_type in types
            )
        return found

    def encoded(self, index: int, event: JSONObject, shift: int) -> str:
        """The wire form of ``event`` (step ``index``) with its times moved by ``shift``.

        ``event`` must be the data of step ``index`` of :attr:`steps`: the cache
        is keyed by the index.
        """
        timed = self._timed.get(index)
        if timed is None:
            timed = self._timed[index] = shift_times(event, 1) is not event
        if not timed or not shift:
            plain = self._plain.get(index)
            if plain is None:
                plain = self._plain[index] = encode_event(event)
            return plain
        cached = self._shifted.get(index)
        if cached is not None and cached[0] == shift:
            return cached[1]
        wire = encode_event(shift_times(event, shift))
        self._shifted[index] = (shift, wire)  # only the latest shift: the clock moves on
        return wire
