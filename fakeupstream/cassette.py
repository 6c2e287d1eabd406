"""The in-memory cassette: an immutable record of one realtime WebSocket session.

A cassette says how the upgrade request is answered (:class:`Handshake`) and
lists every frame both ways, in recorded order (:attr:`Cassette.timeline`), and
the HTTP requests made next to the socket (:attr:`Cassette.http`).
Nothing here does I/O; :mod:`fakeupstream.storage` reads these objects from YAML
and writes them back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:  # faults.py builds on this module; the model only holds its values
    from .faults import Fault

from .rules import Rule
from .unexpected import OnUnexpected

__all__ = [
    "FORMAT_VERSION",
    "Authored",
    "Cassette",
    "CloseStep",
    "Condition",
    "Direction",
    "Episode",
    "Expectation",
    "FrameStep",
    "Handshake",
    "HandshakeRule",
    "HttpBody",
    "HttpExchange",
    "JSONObject",
    "MatchMode",
    "Recorded",
    "Refusal",
    "Step",
    "encode_event",
    "is_sendable_close_code",
    "valid_name",
]

FORMAT_VERSION = 1
MAX_NAME_LENGTH = 200
"""Longer names are refused before any file system call (they could never be a file)."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

JSONObject: TypeAlias = dict[str, Any]
"""A decoded JSON object (a realtime event)."""


class MatchMode(StrEnum):
    """How a client frame is compared with the one the cassette expects."""

    TYPE = "type"
    SUBSET = "subset"
    EXACT = "exact"


class Direction(StrEnum):
    """Who sent a frame."""

    SERVER = "server"
    CLIENT = "client"


def is_sendable_close_code(code: int) -> bool:
    """Tell whether ``code`` may appear in a close frame (RFC 6455 and the IANA registry).

    1005, 1006 and 1015 are reserved for reporting *missing* close frames and
    must never be sent; 3000-4999 are for libraries and applications (the GA
    API uses 3000 and 4000).
    """
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


def valid_name(name: str) -> bool:
    """Tell whether ``name`` can name a cassette: letters, digits, ``_ . -``, and ``/``.

    A name is the file's path under the cassette directory without ``.yaml``: parts
    separated by ``/`` (``test_chat/test_reply``), each checked on its own, so no
    absolute path, no empty part, no backslash, no leading dot (no hidden or
    parent-directory files), no ``.yaml`` suffix; at most ``MAX_NAME_LENGTH`` characters.
    """
    return (
        len(name) <= MAX_NAME_LENGTH
        and all(_NAME.fullmatch(part) is not None for part in name.split("/"))
        and not name.endswith(".yaml")
    )


def encode_event(event: Mapping[str, Any]) -> str:
    """Serialize an event as the compact JSON text sent on the wire."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class FrameStep:
    """One data frame: a JSON event, a raw text frame or a binary frame.

    Attributes:
        direction: who sends it.
        data: the event (a JSON object), raw text, or bytes.
        delay: seconds since the previous step, as recorded.
        match: matcher for a client frame; ``None`` uses the cassette default.
        line: the YAML line it came from, for error messages (not compared).
    """

    direction: Direction
    data: JSONObject | str | bytes
    delay: float = 0.0
    match: MatchMode | None = None
    line: int | None = field(default=None, compare=False)

    @property
    def event_type(self) -> str | None:
        """The event's ``type``, when the frame is a JSON event that has one."""
        if isinstance(self.data, dict):
            value = self.data.get("type")
            return value if isinstance(value, str) else None
        return None

    def wire(self) -> str | bytes:
        """The frame exactly as it goes on the wire."""
        if isinstance(self.data, dict):
            return encode_event(self.data)
        return self.data

    def summary(self) -> str:
        """A short human description: the event type, or the kind of frame."""
        if isinstance(self.data, dict):
            return repr(self.event_type or "<event without type>")
        if isinstance(self.data, str):
            return f"text frame {self.data[:40]!r}"
        return f"binary frame of {len(self.data)} bytes"


@dataclass(frozen=True, slots=True)
class CloseStep:
    """The server closes the connection with ``code`` and ``reason``."""

    code: int
    reason: str = ""
    delay: float = 0.0
    line: int | None = field(default=None, compare=False)

    def summary(self) -> str:
        """A short human description of the close."""
        return f"close {self.code} {self.reason!r}"


Step: TypeAlias = FrameStep | CloseStep


@dataclass(frozen=True, slots=True)
class Condition:
    """What must hold of an upgrade request for a handshake rule to answer it.

    Header names compare in any letter case; an empty condition always holds.
    """

    header: tuple[str, ...] = ()
    header_equals: tuple[tuple[str, str], ...] = ()
    missing_header: tuple[str, ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    missing_query: tuple[str, ...] = ()
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Refuse the upgrade with an HTTP status and a JSON body."""

    status: int
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class HandshakeRule:
    """When ``when`` holds: accept and play ``respond`` (ending in a close), or ``refuse``."""

    when: Condition
    respond: tuple[Step, ...] = ()
    refuse: Refusal | None = None
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the upgrade request should carry; differences are reported, not refused."""

    path: str | None = None
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Handshake:
    """How the upgrade request is checked and answered.

    Attributes:
        expect: what the request should carry (differences are mismatches).
        rules: tried in order; the first that holds answers the request.
        accept_beta: replay even when the request carries ``OpenAI-Beta`` (the GA
            API, and so the fake by default, rejects it with close 4000).
    """

    expect: Expectation = Expectation()
    rules: tuple[HandshakeRule, ...] = ()
    accept_beta: bool = False


HttpBody: TypeAlias = JSONObject | list[Any] | str | None
"""An HTTP body as a cassette keeps it: JSON (an object or a list), text, or none."""


@dataclass(frozen=True, slots=True)
class HttpExchange:
    """One HTTP request made next to the WebSocket, and its answer (the REST side).

    A backend mints a client secret, or a browser sets up a WebRTC call, before the
    socket opens: replay answers the same request with the same status and body
    (a fresh ``ek_`` key where the recording holds a placeholder).

    Attributes:
        method: the request method, in capitals (``POST``).
        path: the request path and query, after any ``/cassettes/<name>`` prefix.
        status: the response status.
        request_body: what was sent (documents the exchange; replay does not compare it).
        response_body: what came back.
        response_headers: the response headers kept (``content-type``, ``location``).
        line: the YAML line it came from, for error messages (not compared).
    """

    method: str
    path: str
    status: int
    request_body: HttpBody = None
    response_body: HttpBody = None
    response_headers: tuple[tuple[str, str], ...] = ()
    line: int | None = field(default=None, compare=False)

    @property
    def route(self) -> str:
        """The path without its query or a trailing ``/``: what a request is matched on."""
        return self.path.partition("?")[0].rstrip("/") or "/"


@dataclass(frozen=True, slots=True)
class Recorded:
    """Where and when a cassette was recorded (all optional for hand-written ones)."""

    at: datetime | None = None
    upstream: str | None = None
    model: str | None = None
    fakeupstream: str | None = None


@dataclass(frozen=True, slots=True)
class Authored:
    """A cassette written by hand (or generated), not captured: from what, and by whom.

    ``recorded`` is for what the recorder wrote from a real upstream; ``authored``
    says that nothing here was captured, so nobody trusts it as a capture.

    Attributes:
        at: the time the frames' ``expires_at`` / ``created_at`` are relative to
            (the replay shifts them from it, as from ``recorded.at``).
        sources: what it was written from (a protocol reference, SDK types, captures).
        by: who or what wrote it.
    """

    at: datetime | None = None
    sources: tuple[str, ...] = ()
    by: str | None = None


@dataclass(frozen=True, slots=True)
class Episode:
    """One recorded connection: how its upgrade was answered and its frames.

    ``faults`` are injected on top of the replay (see :mod:`fakeupstream.faults`).
    """

    handshake: Handshake = Handshake()
    timeline: tuple[Step, ...] = ()
    faults: tuple[Fault, ...] = ()


@dataclass(frozen=True, slots=True)
class Cassette:
    """One scenario: one or more recorded connections (episodes), replayed in order.

    The n-th connection to a cassette replays its n-th episode; once they are all
    used, later connections replay the last one (so a one-episode cassette serves
    any number of connections).
    """

    name: str
    episodes: tuple[Episode, ...] = (Episode(),)
    description: str = ""
    match: MatchMode = MatchMode.TYPE
    recorded: Recorded = Recorded()
    version: int = FORMAT_VERSION
    on_unexpected: OnUnexpected | None = None
    """The unexpected-event policy; ``None``: the server's (default ``emulate``)."""
    authored: Authored | None = None
    """Set when the cassette was written rather than recorded."""
    rules: tuple[Rule, ...] = ()
    """Answers to client events the recording does not have (see :mod:`.rules`)."""
    simulated: bool = False
    """No timeline at all (only rules, or only HTTP exchanges): the session model greets
    a WebSocket with ``session.created``."""
    http: tuple[HttpExchange, ...] = ()
    """The HTTP requests made next to the sockets, and their answers, in recorded order."""
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.episodes:
            raise ValueError("a cassette has at least one episode")

    @property
    def time_anchor(self) -> datetime | None:
        """When the frames' times were true: ``recorded.at``, else ``authored.at``."""
        if self.recorded.at is not None:
            return self.recorded.at
        return None if self.authored is None else self.authored.at

    @property
    def timeline(self) -> tuple[Step, ...]:
        """The first episode's timeline."""
        return self.episodes[0].timeline

    @property
    def handshake(self) -> Handshake:
        """The first episode's handshake."""
        return self.episodes[0].handshake

    def episode(self, index: int) -> Episode:
        """The episode the ``index``-th connection (from 0) replays."""
        return self.episodes[min(index, len(self.episodes) - 1)]

    def steps(self) -> list[Step]:
        """Every step of every episode: handshake responses first, then the timeline."""
        return [
            step
            for episode in self.episodes
            for step in (
                *(item for rule in episode.handshake.rules for item in rule.respond),
                *episode.timeline,
            )
        ]

    def client_steps(self) -> list[FrameStep]:
        """The frames the client is expected to send, in order, in every episode."""
        return [
            step
            for step in self.steps()
            if isinstance(step, FrameStep) and step.direction is Direction.CLIENT
        ]

    def server_frames(self) -> list[FrameStep]:
        """Every server frame, in handshake responses and timelines, in every episode."""
        return [
            step
            for step in self.steps()
            if isinstance(step, FrameStep) and step.direction is Direction.SERVER
        ]
