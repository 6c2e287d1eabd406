"""Faults: the ways a real upstream fails, as values, and when each one fires (sans-I/O).

A :class:`Fault` is one failure to inject: a :class:`FaultKind` plus its parameters.
Three of the kinds act on the upgrade request (``refuse``, ``delay``,
``accept_then_close``); the others act during the session, and fire on a trigger:

- ``after=N``: once the server has sent N data frames (0, the default: at once);
- ``event=TYPE``: when the client sends an event of that ``type``.

Faults are armed three ways (a cassette's ``faults:``, the admin API, the pytest
plugin), all parsed by :func:`build_fault`, whose errors list the valid values.
A :class:`FaultBoard` holds the faults armed for the next connections; a
:class:`FaultSchedule` decides, for one connection, which fault fires when. The
server (:mod:`fakeupstream.serve.fault_runner`) executes them; nothing here does I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from .cassette import JSONObject, is_sendable_close_code
from .exceptions import FaultError
from .ga import EventIds, error_event
from .responses import HttpResponse, error_response, json_response

__all__ = [
    "FAULT_PARAMS",
    "ErrorKind",
    "Fault",
    "FaultBoard",
    "FaultKind",
    "FaultSchedule",
    "FiredFault",
    "answer_fault_request",
    "build_fault",
    "error_fault_event",
    "parse_fault_query",
    "refusal",
]


class FaultKind(StrEnum):
    """What goes wrong."""

    REFUSE = "refuse"
    """Refuse the upgrade with an HTTP status and an OpenAI error body."""
    DELAY = "delay"
    """Hold the upgrade ``seconds`` before answering it."""
    ACCEPT_THEN_CLOSE = "accept_then_close"
    """Accept the upgrade (101), then close at once with ``code`` and ``reason``."""
    CLOSE = "close"
    """Close with ``code`` and ``reason``."""
    RESET = "reset"
    """Drop the TCP connection with a reset: no close frame."""
    STALL = "stall"
    """Send nothing for ``seconds`` (forever when not given); the socket stays open."""
    DRIP = "drip"
    """From now on, send every frame at ``rate`` bytes per second (in fragments)."""
    DROP = "drop"
    """Never send the next server frame."""
    DUPLICATE = "duplicate"
    """Send the next server frame twice."""
    TRUNCATE = "truncate"
    """Send only the first half of the next server frame (a JSON frame no longer parses)."""
    ERROR = "error"
    """Send a server ``error`` event; a fatal one is followed by its close."""
    NO_PONG = "no_pong"
    """Ignore everything received: pings go unanswered, client frames are dropped."""

    @property
    def at_upgrade(self) -> bool:
        """Whether the fault acts on the upgrade request rather than on the session."""
        return self in _UPGRADE_KINDS


_UPGRADE_KINDS = frozenset({FaultKind.REFUSE, FaultKind.DELAY, FaultKind.ACCEPT_THEN_CLOSE})
_NEXT_FRAME_KINDS = frozenset({FaultKind.DROP, FaultKind.DUPLICATE, FaultKind.TRUNCATE})


class ErrorKind(StrEnum):
    """The server ``error`` events an ``error`` fault sends."""

    SERVER_ERROR = "server_error"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    SESSION_EXPIRED = "session_expired"


@dataclass(frozen=True, slots=True)
class _ErrorShape:
    type: str
    code: str | None
    message: str
    close: tuple[int, str] | None  # fatal errors are followed by this close


# session_expired's type and code are seen in public captures (its message then said 15
# minutes; GA sessions last 60); its close code is not, and follows the rule the API
# applies to its other fatal errors: close 4000 with reason "<type>.<code>". The other
# two are inferred from the API's error types and REST codes, and leave the session
# open, like the API's other non-fatal errors.
_ERRORS: dict[ErrorKind, _ErrorShape] = {
    ErrorKind.SERVER_ERROR: _ErrorShape(
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
        None,
    ),
    ErrorKind.RATE_LIMIT_EXCEEDED: _ErrorShape(
        "invalid_request_error",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again later.",
        None,
    ),
    ErrorKind.SESSION_EXPIRED: _ErrorShape(
        "invalid_request_error",
        "session_expired",
        "Your session hit the maximum duration of 60 minutes.",
        (4000, "invalid_request_error.session_expired"),
    ),
}

_TRIGGERS = ("after", "event")
FAULT_PARAMS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.REFUSE: ("status", "seconds", "reason"),
    FaultKind.DELAY: ("seconds",),
    FaultKind.ACCEPT_THEN_CLOSE: ("code", "reason"),
    FaultKind.CLOSE: (*_TRIGGERS, "code", "reason"),
    FaultKind.RESET: _TRIGGERS,
    FaultKind.STALL: (*_TRIGGERS, "seconds"),
    FaultKind.DRIP: (*_TRIGGERS, "rate"),
    FaultKind.DROP: _TRIGGERS,
    FaultKind.DUPLICATE: _TRIGGERS,
    FaultKind.TRUNCATE: _TRIGGERS,
    FaultKind.ERROR: (*_TRIGGERS, "error", "code", "reason"),
    FaultKind.NO_PONG: _TRIGGERS,
}
"""The parameters each kind takes (``kind`` itself aside)."""
_REQUIRED: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.DELAY: ("seconds",),
    FaultKind.DRIP: ("rate",),
    FaultKind.ERROR: ("error",),
}
_DEFAULT_CLOSE = 1011
_DEFAULT_STATUS = 503


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to inject. Build it with :func:`build_fault`, which validates it.

    Parameters a kind does not take are ``None``; so are the ones left to their
    default (see the properties).
    """

    kind: FaultKind
    after: int | None = None
    event: str | None = None
    code: int | None = None
    reason: str | None = None
    status: int | None = None
    seconds: float | None = None
    rate: int | None = None
    error: ErrorKind | None = None

    @property
    def close(self) -> tuple[int, str] | None:
        """The close this fault ends the connection with, if it sends one."""
        if self.kind is FaultKind.ERROR:
            assert self.error is not None
            default = _ERRORS[self.error].close
            if default is None and self.code is None:
                return None
            code, reason = default or (_DEFAULT_CLOSE, "")
            return (self.code or code, reason if self.reason is None else self.reason)
        if self.kind in (FaultKind.CLOSE, FaultKind.ACCEPT_THEN_CLOSE):
            return (self.code or _DEFAULT_CLOSE, self.reason or "")
        return None

    def to_dict(self) -> dict[str, Any]:
        """The fault as given: ``kind`` and the parameters that were set (JSON and YAML)."""
        out: dict[str, Any] = {"kind": self.kind.value}
        for item in fields(self)[1:]:
            value = getattr(self, item.name)
            if value is not None:
                out[item.name] = value.value if isinstance(value, StrEnum) else value
        return out

    def describe(self) -> str:
        """``kind after=2 code=4000 ...``: one line for logs and reports."""
        params = self.to_dict()
        kind = params.pop("kind")
        return " ".join([kind, *(f"{key}={value}" for key, value in params.items())])


def _valid(values: Sequence[str]) -> str:
    return ", ".join(values)


def _integer(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(f"{name} must be an integer, got {value!r}", name)
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise FaultError(f"{name} must be {bounds}, got {value}", name)
    return value


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{name} must be a number of seconds, got {value!r}", name)
    if not math.isfinite(value) or value < 0:
        raise FaultError(f"{name} must be a number of seconds, zero or more, got {value}", name)
    return float(value)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise FaultError(f"{name} must be a string, got {value!r}", name)
    return value


def _close_code(value: object) -> int:
    code = _integer("code", value, 1000, 4999)
    if not is_sendable_close_code(code):
        raise FaultError(
            f"code {code} cannot be sent in a close frame; expected 1000-1003, 1007-1014 "
            "or 3000-4999",
            "code",
        )
    return code


def build_fault(kind: object, params: Mapping[str, object]) -> Fault:
    """Build and validate a fault from its kind and parameters.

    Values are typed (from YAML or Python); :func:`parse_fault_query` converts text.

    Raises:
        FaultError: an unknown kind, a parameter the kind does not take, a missing
            or out-of-range value; the message lists what is valid.
    """
    try:
        fault_kind = FaultKind(str(kind))
    except ValueError:
        raise FaultError(
            f"unknown fault kind {kind!r}; expected one of: "
            + _valid([item.value for item in FaultKind])
        ) from None
    allowed = FAULT_PARAMS[fault_kind]
    for name in params:
        if name not in allowed:
            raise FaultError(
                f"fault {fault_kind.value!r} takes no parameter {name!r}; it takes: "
                + (_valid(allowed) or "none"),
                name,
            )
    for name in _REQUIRED.get(fault_kind, ()):
        if name not in params:
            raise FaultError(f"fault {fault_kind.value!r} needs {name!r}", name)
    if "after" in params and "event" in params:
        raise FaultError(
            "give a fault one trigger: `after` (frames) or `event` (a client event type)", "event"
        )
    values: dict[str, Any] = {}
    for name, value in params.items():
        values[name] = _parameter(name, value)
    if fault_kind is FaultKind.REFUSE and "seconds" in values:
        seconds = values["seconds"]
        if seconds != int(seconds):
            raise FaultError("seconds (the Retry-After value) must be whole seconds", "seconds")
    return Fault(fault_kind, **values)


def _parameter(name: str, value: object) -> object:
    if name == "after":
        return _integer("after", value, 0)
    if name == "event":
        text = _text("event", value)
        if not text:
            raise FaultError("event must name a client event type, e.g. response.create", "event")
        return text
    if name == "code":
        return _close_code(value)
    if name == "reason":
        reason = _text("reason", value)
        if len(reason.encode()) > 123:
            raise FaultError("reason is at most 123 bytes (a close frame's limit)", "reason")
        return reason
    if name == "status":
        return _integer("status", value, 200, 599)
    if name == "seconds":
        return _number("seconds", value)
    if name == "rate":
        return _integer("rate", value, 1)
    assert name == "error"
    try:
        return ErrorKind(str(value))
    except ValueError:
        raise FaultError(
            f"unknown error {value!r}; expected one of: "
            + _valid([item.value for item in ErrorKind]),
            "error",
        ) from None


def parse_fault_query(query: Mapping[str, str]) -> tuple[Fault, int]:
    """Parse the admin API's ``?kind=K&after=N&...&count=C``.

    Returns:
        The fault and how many of the next connections it applies to (``count``,
        default 1).

    Raises:
        FaultError: as :func:`build_fault`; also for a bad ``count``.
    """
    params = dict(query)
    if "kind" not in params:
        raise FaultError(
            "missing query parameter 'kind'; expected one of: "
            + _valid([item.value for item in FaultKind])
        )
    kind = params.pop("kind")
    count = (
        _integer("count", _from_text("count", params.pop("count")), 1) if "count" in params else 1
    )
    return build_fault(
        kind, {name: _from_text(name, value) for name, value in params.items()}
    ), count


_INTEGERS = frozenset({"after", "code", "status", "rate", "count"})


def _from_text(name: str, text: str) -> object:
    """A query value as the type its parameter takes (left as text when it is not a number)."""
    try:
        if name in _INTEGERS:
            return int(text.strip())
        if name == "seconds":
            return float(text.strip())
    except ValueError:
        pass
    return text


def refusal(fault: Fault) -> HttpResponse:
    """The HTTP answer of a ``refuse`` fault, in the OpenAI error shape."""
    status = fault.status or _DEFAULT_STATUS
    headers = () if fault.seconds is None else (("Retry-After", str(int(fault.seconds))),)
    if status == 429:
        error_type, code, message = (
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached for requests. Please try again later.",
        )
    elif status >= 500:
        error_type, code, message = (
            "server_error",
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
        )
    else:
        error_type, code, message = ("invalid_request_error", "refused", "Upgrade refused.")
    if fault.reason is not None:
        message = fault.reason
    return error_response(status, message, code, type=error_type, headers=headers)


def error_fault_event(fault: Fault, ids: EventIds) -> JSONObject:
    """The server ``error`` event an ``error`` fault sends."""
    assert fault.error is not None
    shape = _ERRORS[fault.error]
    return error_event(ids.next(), code=shape.code, message=shape.message, error_type=shape.type)


@dataclass(frozen=True, slots=True)
class FiredFault:
    """A fault that fired, for the connection's report.

    Attributes:
        fault: the fault, as armed (``kind`` and parameters).
        frames: how many data frames the server had sent when it fired.
        at: seconds since the connection was accepted (0 at the upgrade).
    """

    fault: dict[str, Any]
    frames: int
    at: float


class FaultBoard:
    """The faults armed for the next connections (the admin API and the plugin arm them)."""

    def __init__(self) -> None:
        self._armed: list[list[Any]] = []  # [fault, connections left]

    def arm(self, fault: Fault, count: int = 1) -> None:
        """Arm ``fault`` for the next ``count`` connections."""
        self._armed.append([fault, _integer("count", count, 1)])

    def disarm(self) -> int:
        """Disarm everything; return how many faults were armed."""
        count = len(self._armed)
        self._armed.clear()
        return count

    def armed(self) -> list[tuple[Fault, int]]:
        """``(fault, connections left)`` for every armed fault, in arming order."""
        return [(fault, left) for fault, left in self._armed]

    def take(self) -> tuple[Fault, ...]:
        """The faults for a new connection; each is used up after ``count`` connections."""
        taken = tuple(fault for fault, _ in self._armed)
        for entry in self._armed:
            entry[1] -= 1
        self._armed = [entry for entry in self._armed if entry[1] > 0]
        return taken


@dataclass
class FaultSchedule:
    """Decides when one connection's session faults fire (sans-I/O).

    The caller reports every server data frame (:meth:`next_frame`) and client frame
    (:meth:`received`), and asks :meth:`due` what fires now. Each fault fires once.
    ``after=N`` fires once N frames are sent (so ``reset after=2`` lets exactly two
    frames through); ``drop``, ``duplicate`` and ``truncate`` then act on the frame
    after those N.

    Attributes:
        sent: data frames sent to the client so far.
        rate: bytes per second once a ``drip`` fired, else ``None``.
    """

    faults: Sequence[Fault]
    sent: int = 0
    rate: int | None = None
    _waiting: list[int] = field(default_factory=list, init=False, repr=False)  # into faults
    _seen: set[int] = field(default_factory=set, init=False, repr=False)  # their event came
    _mangle: list[FaultKind] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._waiting = [i for i, fault in enumerate(self.faults) if not fault.kind.at_upgrade]

    @property
    def upgrade(self) -> Fault | None:
        """The first fault acting on the upgrade request, if any."""
        return next((fault for fault in self.faults if fault.kind.at_upgrade), None)

    @property
    def active(self) -> bool:
        """Whether anything can still happen during the session."""
        return bool(self._waiting or self._mangle or self.rate)

    def received(self, data: str | bytes) -> None:
        """Note a client frame: faults waiting for its event type become due."""
        event_type = _event_type(data)
        if event_type is None:
            return
        self._seen.update(i for i in self._waiting if self.faults[i].event == event_type)

    def due(self) -> list[Fault]:
        """The faults that fire now, in arming order; each is returned once."""
        fired = [
            i
            for i in self._waiting
            if i in self._seen
            or (self.faults[i].event is None and self.sent >= (self.faults[i].after or 0))
        ]
        self._waiting = [i for i in self._waiting if i not in fired]
        for fault in (self.faults[i] for i in fired):
            if fault.kind in _NEXT_FRAME_KINDS:
                self._mangle.append(fault.kind)
            elif fault.kind is FaultKind.DRIP:
                self.rate = fault.rate
        return [self.faults[i] for i in fired]

    def next_frame(self, data: str | bytes) -> list[str | bytes]:
        """What actually goes out for the next server frame (none, once, twice, cut)."""
        frames: list[str | bytes] = [data]
        while self._mangle:
            kind = self._mangle.pop(0)
            if kind is FaultKind.DROP:
                frames = []
            elif kind is FaultKind.DUPLICATE:
                frames = frames * 2
            else:
                frames = [frame[: len(frame) // 2] for frame in frames]
        self.sent += len(frames)
        return frames


def _event_type(data: str | bytes) -> str | None:
    if isinstance(data, bytes):
        return None
    try:
        event = json.loads(data)
    except ValueError:
        return None
    kind = event.get("type") if isinstance(event, dict) else None
    return kind if isinstance(kind, str) else None


def answer_fault_request(method: str, query: Mapping[str, str], board: FaultBoard) -> HttpResponse:
    """The admin API on faults (sans-I/O): arm, disarm, list.

    ``POST /__fakeupstream/fault?kind=K&...&count=C`` arms a fault for the next ``C``
    connections (400 listing the valid values, nothing armed, when it is not valid);
    ``DELETE /__fakeupstream/fault`` disarms them all; ``GET /__fakeupstream/faults``
    lists what is armed.
    """
    if method == "GET":
        return json_response(200, {"faults": _listing(board)})
    if method == "DELETE":
        return json_response(200, {"disarmed": board.disarm()})
    try:
        fault, count = parse_fault_query(query)
    except FaultError as exc:
        return error_response(
            400,
            f"invalid fault: {exc}",
            "invalid_fault",
            param=exc.param,
            kinds=[kind.value for kind in FaultKind],
        )
    board.arm(fault, count)
    return json_response(200, {"armed": {**fault.to_dict(), "count": count}})


def _listing(board: FaultBoard) -> list[dict[str, Any]]:
    return [{**fault.to_dict(), "count": left} for fault, left in board.armed()]
