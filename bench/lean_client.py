"""The lean load client: recorded sessions played over plain asyncio Protocols.

The ``websockets`` client costs about as much CPU per session as the server it
loads, so on a small machine it takes the core a second server worker would use
and hides the scaling. This client plays the same full session (open, every
recorded client frame, every recorded server event, close 1000) for a fraction
of that: the upgrade request and every masked client frame are built once per
run (:class:`SessionPlan`), a session is a sans-I/O state machine
(:class:`LeanSession`: bytes in, bytes to write out) and a thin
:class:`asyncio.Protocol` around it writes what it returns.

It checks causal order exactly, where the ``websockets`` client can only probe:
every event type must arrive as recorded, and no byte of an event of turn *t*
may have arrived before the client sent the frame turn *t* answers (the parser
gives each message the stream offset of its first byte; the session notes how
many bytes had arrived when it sent).
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from dataclasses import dataclass
from typing import NamedTuple, cast
from urllib.parse import urlsplit

from harness import AUTH, CausalityError, Exchange
from lean_wire import (
    BINARY,
    CLOSE,
    MAX_HEAD,
    PING,
    PONG,
    TEXT,
    FrameParser,
    HandshakeError,
    ProtocolError,
    accept_value,
    check_upgrade,
    client_frame,
    close_payload,
    parse_close,
    upgrade_request,
)

__all__ = ["Expected", "LeanSession", "Phase", "SessionPlan", "event_type", "run_sessions"]

TIMEOUT = 600.0  # a whole batch; only a hung server gets near it
_TYPE_PREFIX = b'{"type":"'  # how both servers encode every event (compact, type first)


class Phase(enum.Enum):
    """Where a session is: upgrading, exchanging, waiting for the close reply, closed."""

    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Expected(NamedTuple):
    """One recorded server event, as a session expects it.

    Attributes:
        kind: its ``type``.
        turn: its turn (0: sent on connect; *t*: answers the client's *t*-th frame).
        then: what the client sends once it has arrived: the next turn's client frame
            after a turn's last event, the close after the exchange's last, else nothing.
    """

    kind: bytes
    turn: int
    then: bytes


@dataclass(frozen=True)
class SessionPlan:
    """Every byte a session sends, and every event type it expects, built once per run.

    Attributes:
        host, port: where to connect.
        request: the whole upgrade request.
        accept: the ``Sec-WebSocket-Accept`` the server must answer.
        first: what the client sends once upgraded, before any event (nothing, unless
            the recording starts with a client frame).
        events: every server event, in recorded order.
    """

    host: str
    port: int
    request: bytes
    accept: bytes
    first: bytes
    events: tuple[Expected, ...]

    @classmethod
    def build(cls, url: str, exchange: Exchange, headers: dict[str, str] = AUTH) -> SessionPlan:
        """The plan for playing ``exchange`` against ``url`` (``ws://HOST:PORT/PATH?QUERY``).

        Every client frame is masked here, once; a session only writes these bytes.
        """
        parts = urlsplit(url)
        if parts.scheme != "ws" or parts.hostname is None or parts.port is None:
            raise ValueError(f"{url}: the lean client needs ws://HOST:PORT/...")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        first = b""
        events: list[Expected] = []

        def send(frame: bytes) -> None:  # once the last event so far has arrived
            nonlocal first
            if events:
                events[-1] = events[-1]._replace(then=events[-1].then + frame)
            else:
                first += frame

        for turn, (client, kinds) in enumerate(exchange.turns):
            if client is not None:
                send(client_frame(TEXT, client.encode()))
            events += (Expected(kind.encode(), turn, b"") for kind in kinds)
        send(client_frame(CLOSE, close_payload(1000)))
        return cls(
            host=parts.hostname,
            port=parts.port,
            request=upgrade_request(parts.hostname, parts.port, target, headers),
            accept=accept_value(),
            first=first,
            events=tuple(events),
        )


def event_type(payload: bytes) -> bytes:
    """The ``type`` of an event, read without parsing the JSON when it comes first."""
    if payload.startswith(_TYPE_PREFIX):
        end = payload.find(b'"', len(_TYPE_PREFIX))
        kind = payload[len(_TYPE_PREFIX) : end]
        if end > 0 and b"\\" not in kind:
            return kind
    try:
        event = json.loads(payload)
    except ValueError:
        return b"(not JSON)"
    found = event.get("type") if isinstance(event, dict) else None
    return found.encode() if isinstance(found, str) else b"(no type)"


class LeanSession:
    """One session's exchange with no I/O: :meth:`receive` takes what the server sent
    and returns what to write back, in one call per read.

    Raises (from :meth:`receive`): :class:`CausalityError` when an event is not the
    recorded one or arrived before the client frame it answers was sent;
    :class:`~lean_wire.HandshakeError` and :class:`~lean_wire.ProtocolError` when the
    server breaks RFC 6455. A server that closes before the exchange ends gets its close
    answered, and :meth:`outcome` reports it.
    """

    def __init__(self, plan: SessionPlan) -> None:
        self.phase = Phase.HANDSHAKE
        self._plan = plan
        self._events = plan.events
        self._parser = FrameParser()
        self._head = b""
        self._next = 0  # the index of the next expected event
        self._sent_at = 0  # bytes of server frames received when the client last sent
        self._failure: str | None = None

    def start(self) -> bytes:
        """What to write once connected: the upgrade request."""
        return self._plan.request

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the server; return the bytes to write (maybe none)."""
        out = b""
        if self.phase is Phase.HANDSHAKE:
            self._head += data
            head, blank, data = self._head.partition(b"\r\n\r\n")
            if not blank:
                if len(self._head) > MAX_HEAD:
                    raise HandshakeError(f"no end to the answer's head in {MAX_HEAD} bytes")
                return b""
            check_upgrade(head, self._plan.accept)
            self.phase, self._head, out = Phase.OPEN, b"", self._plan.first
            if out:  # what came with the 101 came before it
                self._sent_at = len(data)
            if not self._events:
                self.phase = Phase.CLOSING
        self._parser.feed(data)
        while (frame := self._parser.next()) is not None:
            opcode, payload, start = frame
            if self.phase is Phase.CLOSED:
                raise ProtocolError("a frame after the close frame")
            if opcode == TEXT:
                out += self._on_event(payload, start)
            elif opcode == CLOSE:
                out += self._on_close(payload)
            elif opcode == BINARY:
                raise CausalityError(f"{self._where()}: a binary frame, where events are recorded")
            elif opcode == PING and self.phase is Phase.OPEN:
                # A websockets server pings every 20 s; a session under load may last longer.
                out += client_frame(PONG, payload)
        return out

    def outcome(self) -> str | None:
        """Once the connection is gone: ``None`` for a whole exchange closed cleanly,
        else what went wrong."""
        if self._failure is not None:
            return self._failure
        if self.phase is Phase.CLOSED:
            return None
        return f"{self._where()}: the connection ended while {self.phase.value}"

    def _on_event(self, payload: bytes, start: int) -> bytes:
        index = self._next
        if self.phase is not Phase.OPEN:
            late = event_type(payload).decode()
            raise CausalityError(f"{late!r} arrived after the last recorded event")
        expected, turn, then = self._events[index]
        if start < self._sent_at:
            raise CausalityError(
                f"turn {turn}: {event_type(payload).decode()!r} arrived before the client "
                "frame it answers was sent"
            )
        kind = event_type(payload)
        if kind != expected:
            raise CausalityError(
                f"turn {turn}: expected {expected.decode()!r}, got {kind.decode()!r}"
            )
        self._next = index + 1
        if then:
            self._sent_at = self._parser.received
            if self._next == len(self._events):
                self.phase = Phase.CLOSING
        return then

    def _on_close(self, payload: bytes) -> bytes:
        code, reason = parse_close(payload)
        closing, self.phase = self.phase, Phase.CLOSED
        if closing is Phase.CLOSING:  # the answer to the client's close 1000
            if code != 1000:
                self._failure = f"the server answered the close 1000 with {code} {reason!r}"
            return b""
        self._failure = f"{self._where()}: the server closed ({code} {reason!r})"
        return client_frame(CLOSE, payload[:2])  # echo the code, as RFC 6455 asks

    def _where(self) -> str:
        """Where the exchange is, for a message: the turn and the event awaited."""
        if self._next == len(self._events):
            return "after the last event"
        expected = self._events[self._next]
        return f"turn {expected.turn}, awaiting {expected.kind.decode()!r}"


class _LeanProtocol(asyncio.Protocol):
    """Feeds a :class:`LeanSession` from the socket; resolves ``done`` with the session time."""

    def __init__(self, plan: SessionPlan, done: asyncio.Future[float], started: float) -> None:
        self._session = LeanSession(plan)
        self._done = done
        self._started = started
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._session.start())

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        try:
            out = self._session.receive(data)
        except (CausalityError, HandshakeError, ProtocolError) as exc:
            if not self._done.done():
                self._done.set_exception(exc)
            self._transport.abort()
            return
        if out:
            self._transport.write(out)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._done.done():
            return
        failure = self._session.outcome()
        if failure is None:
            self._done.set_result(time.perf_counter() - self._started)
        else:
            self._done.set_exception(RuntimeError(failure if exc is None else f"{failure}: {exc}"))


async def run_sessions(
    url: str, exchange: Exchange, sessions: int, *, give_up_after: float = TIMEOUT
) -> list[float]:
    """Play ``exchange`` in ``sessions`` sessions at once; return each one's duration.

    A duration runs from the connect to the end of the connection after the close
    handshake, as the ``websockets`` client's ``async with connect(...)`` does.

    Raises:
        CausalityError: a session saw the recorded order broken.
        RuntimeError: a session failed otherwise (``HandshakeError``, ``ProtocolError``
            and an early close are ``RuntimeError``s too), or the batch hung.
        OSError: a connection could not be made.
    """
    plan = SessionPlan.build(url, exchange)
    loop = asyncio.get_running_loop()

    async def one() -> float:
        started = time.perf_counter()
        done: asyncio.Future[float] = loop.create_future()
        transport, _ = await loop.create_connection(
            lambda: _LeanProtocol(plan, done, started), plan.host, plan.port
        )
        try:
            return await done
        finally:
            transport.abort()  # nothing left to do once closed; frees the socket otherwise

    try:
        async with asyncio.timeout(give_up_after):
            return list(await asyncio.gather(*(one() for _ in range(sessions))))
    except TimeoutError:
        raise RuntimeError(
            f"{url}: the sessions did not end within {give_up_after:.0f} s"
        ) from None
