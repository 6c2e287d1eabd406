"""The sans-I/O replay engine: client frames in, frames to send (and when) out.

It never touches a socket or reads a clock. The caller feeds it what the client
sent with the current time, asks :meth:`ReplaySession.due` what must go out now,
and :meth:`ReplaySession.deadline` when to ask again.

The one rule that makes streaming, multi-turn and mid-stream cancellation work
with no special cases is *causality*: a server step goes out once every client
step recorded before it has arrived and matched, and once its recorded delay
(scaled by ``speed``) has passed since the step before it happened.

Audio is the one place where a client may legitimately differ in *count*: it
may cut the same audio into more or fewer ``input_audio_buffer.append`` chunks
than were recorded. A run of recorded appends therefore matches any number of
appends (one or more) in a row.

A client event the recording did not expect at that point goes to the
unexpected-event policy (:mod:`.unexpected`): under ``emulate`` (the default)
the GA session model (:mod:`.session_model`), which observes every frame both
ways, answers it and replay carries on; recorded ``session.update`` steps the
client skipped are passed over together with their recorded answers. What the
model cannot answer is a mismatch, always answered with an ``error`` event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from .cassette import CloseStep, Direction, FrameStep, JSONObject, MatchMode, Step, encode_event
from .ga import (
    SUPPORTED_CLIENT_EVENTS,
    EventIds,
    binary_frame_error,
    invalid_json_error,
    unexpected_event_error,
    unknown_event_error,
)
from .ids import IdRewriter
from .matchers import frame_differences
from .report import ConnectionReport, Mismatch
from .rule_replies import rule_answer
from .rules import Rule
from .session_model import OBSERVED_SERVER_EVENTS, SessionModel
from .timeshift import shift_times
from .unexpected import POLICY_CLOSE_CODE, OnUnexpected, close_reason
from .wire import CLIENT_FRAME, CLOSE, WireFrames

__all__ = ["Action", "Close", "ReplayOptions", "ReplaySession", "Send", "check_speed"]

_APPEND = "input_audio_buffer.append"
# Recorded client steps a client may leave out under `emulate` (their answers are skipped).
_SKIPPABLE = frozenset({"session.update"})


def check_speed(speed: float) -> float:
    """Return ``speed`` if it can scale recorded delays (a number, zero or more).

    Raises:
        ValueError: it cannot; the message says what is expected.
    """
    if not speed >= 0 or speed == float("inf"):  # also refuses NaN
        raise ValueError(
            f"speed must be a number, zero or more (0: no delays, 1: real time), got {speed!r}"
        )
    return float(speed)


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How a server replays its cassettes.

    Attributes:
        speed: recorded delays are multiplied by this (0: none, 1: real time).
        match: when given, overrides every cassette's default matcher.
        fresh_ids: replace recorded ids by fresh ones per connection (see :mod:`.ids`).
        on_unexpected: when given, overrides every cassette's unexpected-event policy.
    """

    speed: float = 0.0
    match: MatchMode | None = None
    fresh_ids: bool = False
    on_unexpected: OnUnexpected | None = None

    def __post_init__(self) -> None:
        check_speed(self.speed)


@dataclass(frozen=True, slots=True)
class Send:
    """Send this frame (text or binary) to the client."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with this code and reason; nothing follows."""

    code: int
    reason: str


Action: TypeAlias = Send | Close


class ReplaySession:
    """Replays one cassette timeline for one connection.

    Args:
        steps: the timeline (or a handshake rule's response).
        report: filled in as the session goes.
        start: the time the connection opened, on the caller's clock.
        speed: delay scale factor: 0 sends as fast as causality allows, 1 is real time.
        default_match: matcher for client steps that do not name one.
        time_shift: seconds added to ``expires_at`` / ``created_at`` in server events.
        ids: the source of fresh server event ids (for errors the fake makes up).
        cassette: the cassette's name, quoted in error messages.
        fresh_ids: when given, recorded ids are replaced by fresh ones (see :mod:`.ids`).
        on_unexpected: what to do with a client event the recording did not expect.
        rules: answers to events the recording does not have, tried before the
            session model (see :mod:`.rules`).
        greet: send the session model's ``session.created`` first (a cassette
            with rules and no timeline).
        wire: the encoded frames of ``steps``, shared with other connections replaying
            the same timeline (see :mod:`.wire`); by default this session encodes its own.
    """

    def __init__(
        self,
        steps: Sequence[Step],
        report: ConnectionReport,
        *,
        start: float,
        speed: float = 0.0,
        default_match: MatchMode = MatchMode.TYPE,
        time_shift: int = 0,
        ids: EventIds | None = None,
        cassette: str = "cassette",
        fresh_ids: IdRewriter | None = None,
        on_unexpected: OnUnexpected = OnUnexpected.EMULATE,
        rules: Sequence[Rule] = (),
        greet: bool = False,
        wire: WireFrames | None = None,
    ) -> None:
        check_speed(speed)
        self._steps = tuple(steps)
        if wire is not None and wire.steps is not steps:
            raise ValueError("wire must encode the very steps this session replays")
        self._wire = wire if wire is not None else WireFrames(self._steps)
        self._report = report
        self._speed = speed
        self._default_match = default_match
        self._time_shift = time_shift
        self._ids = ids or EventIds(report.id)
        self._cassette = cassette
        self._cursor = 0  # next step to play on the server side
        self._client_cursor = 0  # every client step before this index has matched
        self._last_time = start  # when the step before the cursor happened
        self._arrivals: dict[int, float] = {}
        self._outbox: list[Action] = []
        # recorded client event_id -> the one actually sent (None: it sent none)
        self._echo: dict[str, str | None] = {}
        self._fresh_ids = fresh_ids
        self._after_append = False  # the last client step matched was an audio append
        self._on_unexpected = on_unexpected
        self._model = SessionModel(self._ids, report.id)
        self._skipped: set[int] = set()  # recorded steps passed over (skipped housekeeping)
        self._rules = tuple(rules)
        # Worked out once, so the per-frame cost is one set lookup (most frames are deltas
        # the model ignores): the recorded server frames the session model learns from.
        self._observed = self._wire.server_steps_of(OBSERVED_SERVER_EVENTS)
        if greet:
            created = {"type": "session.created", "session": self._model.session}
            self._send_made(self._model.emit([created]))
        self.closed = False
        report.total = len(self._steps)

    # -- input ----------------------------------------------------------------------------

    def receive(self, data: str | bytes, now: float) -> None:
        """Take one frame from the client, received at ``now``."""
        if self.closed:
            return
        index = self._next_client_step()
        expected = None if index is None else self._steps[index]
        assert expected is None or isinstance(expected, FrameStep)
        # A cassette may expect a raw frame (a recorded mistake): compare it as sent.
        if (
            expected is not None
            and not isinstance(expected.data, dict)
            and not frame_differences(MatchMode.EXACT, expected.data, data)
        ):
            self._accept(index, expected, data, now)
            return
        if isinstance(data, bytes):
            self._protocol_error("binary frame", binary_frame_error(self._ids.next()))
            return
        try:
            event = json.loads(data)
        except ValueError as exc:
            self._protocol_error(
                f"invalid JSON {data[:40]!r}", invalid_json_error(self._ids.next(), str(exc))
            )
            return
        if self._fresh_ids is not None and isinstance(event, dict):
            event = self._fresh_ids.incoming(event)
        if not isinstance(event, dict):
            self._protocol_error(
                f"not a JSON object {data[:40]!r}",
                invalid_json_error(self._ids.next(), "Expected a JSON object."),
            )
            return
        if self._after_append and event.get("type") == _APPEND:
            if expected is None or expected.event_type != _APPEND:
                return  # more audio chunks than recorded: the same audio, cut finer
        elif self._after_append:
            # Fewer audio chunks than recorded: the rest of the recorded run is covered.
            while index is not None and expected is not None and expected.event_type == _APPEND:
                self._accept(index, expected, None, now)
                index = self._next_client_step()
                expected = None if index is None else self._steps[index]
                assert expected is None or isinstance(expected, FrameStep)
        mode = self._mode(expected)
        if expected is not None:
            assert isinstance(expected.data, dict)
            found = frame_differences(mode, expected.data, event)
            if not found:
                self._accept(index, expected, event, now)
                return
        else:
            found = ["the cassette expected no more client frames"]
        event_type = event.get("type")
        if event_type not in SUPPORTED_CLIENT_EVENTS:
            # The GA API answers this the same way whatever the conversation: no mismatch.
            self._protocol_error(
                f"unknown event type {event_type!r}",
                unknown_event_error(self._ids.next(), event_type, event.get("event_id")),
            )
            return
        self._unexpected(index, expected, event, found, now)

    def _mode(self, step: FrameStep | None) -> MatchMode:
        if step is not None and step.match is not None:
            return step.match
        return self._default_match

    def _next_client_step(self) -> int | None:
        for index in range(self._client_cursor, len(self._steps)):
            step = self._steps[index]
            if isinstance(step, FrameStep) and step.direction is Direction.CLIENT:
                return index
        return None

    def _accept(self, index: int | None, step: FrameStep, actual: Any, now: float) -> None:
        assert index is not None
        self._client_cursor = index + 1
        self._arrivals[index] = now
        self._report.played += 1
        self._after_append = step.event_type == _APPEND
        if isinstance(step.data, dict):
            recorded_id = step.data.get("event_id")
            if isinstance(actual, dict):
                self._model.observe_client(actual)
                sent_id = actual.get("event_id")
            else:
                sent_id = None
            if isinstance(recorded_id, str):
                # A recorded error echoes the id the client sent now, or null: never the
                # recorded one (the live API answers null when the client sent none).
                self._echo[recorded_id] = sent_id if isinstance(sent_id, str) else None

    def _unexpected(
        self,
        index: int | None,
        expected: FrameStep | None,
        event: JSONObject,
        found: list[str],
        now: float,
    ) -> None:
        """Apply the unexpected-event policy to a valid event the recording did not expect."""
        # An event of the expected type that differs in content (under `subset` or
        # `exact`) is what the cassette asserts on: a mismatch, never emulated.
        same_type = expected is not None and expected.event_type == event.get("type")
        if self._rules and not same_type:
            found_rule = rule_answer(self._rules, event, self._model)
            if found_rule is not None:
                rule, made, close = found_rule
                number = self._rules.index(rule) + 1
                where = f"rule {number}" + (f" (line {rule.line})" if rule.line else "")
                self._report.add_emulated(f"{event.get('type')!r} answered by {where}")
                self._send_made(made)
                if close is not None:
                    self._outbox.append(Close(close.code, close.reason))
                    self.closed = True
                return
        if self._on_unexpected is OnUnexpected.EMULATE and not same_type:
            if index is not None and self._skip_housekeeping(index, event, now):
                return
            answers = self._model.answer(event)
            if answers is not None:
                where = "after the last step" if index is None else f"at step {index}"
                self._report.add_emulated(
                    f"{event.get('type')!r} {where} answered by the session model"
                )
                self._send_made(answers)
                return
        self._mismatch(index, expected, event, found)
        if self._on_unexpected is OnUnexpected.CLOSE:
            line = None if expected is None else expected.line
            self._outbox.append(
                Close(POLICY_CLOSE_CODE, close_reason(event.get("type"), index, line))
            )
            self.closed = True

    def _send_made(self, events: list[JSONObject]) -> None:
        """Queue events the model or a rule made (with fresh ids when asked)."""
        for event in events:
            if self._fresh_ids is not None:
                event = self._fresh_ids.outgoing(event)
            self._outbox.append(Send(encode_event(event)))

    def _skip_housekeeping(self, index: int, event: JSONObject, now: float) -> bool:
        """Pass over recorded housekeeping the client left out, if ``event`` matches after it."""
        later = self._later_match(index, event)
        if later is None:
            return False
        skipped = [
            step
            for step in self._steps[index:later]
            if isinstance(step, FrameStep) and step.direction is Direction.CLIENT
        ]
        if any(step.event_type not in _SKIPPABLE for step in skipped):
            return False
        for position in range(index, later):
            step = self._steps[position]
            if isinstance(step, FrameStep) and step.direction is Direction.CLIENT:
                self._arrivals[position] = now
            else:
                self._skipped.add(position)
        summary = ", ".join(f"{step.summary()} (line {step.line})" for step in skipped)
        self._report.add_emulated(
            f"skipped recorded {summary}: the client sent {event.get('type')!r} (step {later})"
        )
        later_step = self._steps[later]
        assert isinstance(later_step, FrameStep)
        self._accept(later, later_step, event, now)
        return True

    def _protocol_error(self, what: str, error: JSONObject) -> None:
        self._report.add_protocol_error(what)
        self._outbox.append(Send(encode_event(error)))

    def _mismatch(
        self, index: int | None, expected: FrameStep | None, actual: JSONObject, found: list[str]
    ) -> None:
        hint = ""
        if index is not None:
            later = self._later_match(index, actual)
            if later is not None:
                hint = (
                    f"it matches step {later}: did the client skip {self._steps[index].summary()}?"
                )
        self._report.add_mismatch(
            Mismatch(
                what="unexpected client frame",
                step=index,
                line=None if expected is None else expected.line,
                expected=None if expected is None else expected.data,
                actual=actual,
                differences=found,
                hint=hint,
            )
        )
        if expected is None:
            message = (
                f"fakeupstream: cassette '{self._cassette}' expected no more client "
                f"events, got '{actual.get('type')}'."
            )
        else:
            message = (
                f"fakeupstream: cassette '{self._cassette}' expected client event "
                f"{expected.summary()} (step {index}), got '{actual.get('type')}': "
                + "; ".join(found)
            )
        self._outbox.append(
            Send(
                encode_event(
                    unexpected_event_error(self._ids.next(), message, actual.get("event_id"))
                )
            )
        )

    def _later_match(self, index: int, actual: JSONObject) -> int | None:
        for later in range(index + 1, len(self._steps)):
            step = self._steps[later]
            if (
                isinstance(step, FrameStep)
                and step.direction is Direction.CLIENT
                and isinstance(step.data, dict)
                and not frame_differences(self._mode(step), step.data, actual)
            ):
                return later
        return None

    # -- output ---------------------------------------------------------------------------

    def due(self, now: float, limit: int | None = None) -> list[Action]:
        """Return what must be sent at ``now``, in order, and advance past it.

        With ``limit``, stop after that many recorded steps: the caller sends them and
        asks again, so the first frames of a long stream go out before the rest is
        worked out (at speed 0, a whole timeline can be due at once).
        """
        out, self._outbox = self._outbox, []
        end = len(self._steps) if limit is None else len(out) + limit
        # The hottest loop of a replay: one pass per step, on locals, with each step's
        # kind worked out once per timeline (wire.kinds) instead of isinstance checks.
        steps, kinds, skipped = self._steps, self._wire.kinds, self._skipped
        cursor, last, speed = self._cursor, self._last_time, self._speed
        while not self.closed and cursor < len(steps) and len(out) < end:
            kind = kinds[cursor]
            if kind == CLIENT_FRAME:
                if cursor >= self._client_cursor:
                    break  # causality: wait for the client
                last = max(last, self._arrivals[cursor])
                cursor += 1
                continue
            if skipped and cursor in skipped:
                cursor += 1
                continue
            step = steps[cursor]
            due_time = last + step.delay * speed if speed else last
            if due_time > now:
                break
            last = due_time
            self._report.played += 1
            if kind == CLOSE:
                assert isinstance(step, CloseStep)
                self.closed = True
                out.append(Close(step.code, step.reason))
            else:
                assert isinstance(step, FrameStep)
                if cursor in self._observed:
                    assert isinstance(step.data, dict)
                    self._model.observe_server(step.data)
                out.append(Send(self._frame(cursor, step)))
            cursor += 1
        self._cursor, self._last_time = cursor, last
        return out

    def not_sent(self, count: int) -> None:
        """The last ``count`` actions :meth:`due` returned never went out.

        A fault that ends the connection in the middle of a burst cuts the rest of
        it off: those steps do not count as played.
        """
        self._report.played -= count

    def deadline(self) -> float | None:
        """When the next server step becomes due, or ``None`` if it waits on the client."""
        if self._outbox:
            return self._last_time
        last = self._last_time
        for index in range(self._cursor, len(self._steps)):
            step = self._steps[index]
            if isinstance(step, FrameStep) and step.direction is Direction.CLIENT:
                if index >= self._client_cursor:
                    return None
                last = max(last, self._arrivals[index])
                continue
            if index in self._skipped:
                continue
            return None if self.closed else last + step.delay * self._speed
        return None

    def _frame(self, index: int, step: FrameStep) -> str | bytes:
        if not isinstance(step.data, dict):
            return step.data
        if self._fresh_ids is not None:
            event = self._fresh_ids.outgoing(step.data)
            return encode_event(_rewrite(event, self._time_shift, self._echo) or event)
        if self._echo and step.event_type == "error":
            # It may quote an event_id this client sent: encoded for this connection only.
            rewritten = _rewrite(step.data, self._time_shift, self._echo)
            if rewritten is not None:
                return encode_event(rewritten)
        return self._wire.encoded(index, step.data, self._time_shift)

    # -- end ------------------------------------------------------------------------------

    def finish(self, code: int | None, reason: str | None, *, by: str) -> ConnectionReport:
        """Record how the connection ended and which steps never played."""
        report = self._report
        if report.finished:
            return report
        report.finished = True
        report.close_code, report.close_reason, report.closed_by = code, reason, by
        if not self._skipped and self._client_cursor <= self._cursor:
            # Nothing passed over and no client step matched ahead: the rest, as is.
            report.unplayed.extend(self._wire.unplayed_from(self._cursor))
            return report
        for index in range(self._cursor, len(self._steps)):
            if index in self._skipped:
                continue
            unplayed = self._wire.unplayed(index)
            if unplayed.direction == "client" and index < self._client_cursor:
                continue  # a client step already matched, ahead of the server side
            report.unplayed.append(unplayed)
        return report


def _rewrite(event: JSONObject, shift: int, echo: Mapping[str, str | None]) -> JSONObject | None:
    """Return a copy with times shifted and echoed ids replaced, or ``None`` if unchanged."""
    result: JSONObject = shift_times(event, shift)
    error = result.get("error")
    if echo and result.get("type") == "error" and isinstance(error, dict):
        recorded = error.get("event_id")
        if isinstance(recorded, str) and recorded in echo:
            result = {**result, "error": {**error, "event_id": echo[recorded]}}
    return None if result is event else result
