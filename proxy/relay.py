"""Relay one realtime session between a client and the upstream, frame for frame.

Two pump tasks, one per direction, each ``recv()`` then send. Frames keep
their type (``str`` stays a text frame, ``bytes`` a binary frame) and their
bytes: the gateway never parses or re-serialises JSON it does not need to look
at. Sending waits for the write buffer to drain once it is over its limit
(:class:`~proxy.writer.FrameWriter`, which also batches small frames into one
socket write) and the receive side stops reading once its queue is full
(``max_queue``), so a slow reader slows its writer down through TCP instead of
growing a queue in memory.

Pings are not forwarded as frames: ``websockets`` answers a ping on each hop by
itself and runs its own keepalive on each hop, which is what keeps each TCP
connection alive and detects a dead peer. Relaying the upstream's pings to the
client would only add a round trip per ping; a dead hop is reported as a close
instead (see :func:`forwardable_close`).

When one side closes, the other is closed at once with the same code and
reason, after every frame received before the close has been passed on: the GA
API reports handshake-time problems as an ``error`` event followed by close
3000/4000, and a gateway that drops its client there leaves it with a bare 1005
and no clue.

An upstream that stalls (sends nothing, yet answers pings) is caught only by the
optional idle timeout: when no frame has passed either way for that long, the
client is closed with 1011 and the upstream with 1001.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed, ProtocolError
from websockets.frames import Close, CloseCode

from proxy.logs import TRACE
from proxy.writer import FrameWriter

__all__ = ["RelayResult", "Side", "event_type", "forwardable_close", "relay"]

Side = Literal["client", "upstream"]


@dataclass(frozen=True)
class RelayResult:
    """What happened in one session, for the session-end log line.

    Attributes:
        frames_to_client: Frames relayed upstream → client.
        frames_to_upstream: Frames relayed client → upstream.
        closed_by: The side that closed first, or ``None`` if both went at once.
        received: The close frame that side sent (``None``: it sent none).
        forwarded: The ``(code, reason)`` sent to the other side (to the
            client, after an idle timeout).
        idle: The session was closed by the idle timeout.
    """

    frames_to_client: int
    frames_to_upstream: int
    closed_by: Side | None
    received: Close | None
    forwarded: tuple[int, str] | None
    idle: bool = False


def forwardable_close(
    rcvd: Close | None, side: Side, *, sent: Close | None = None
) -> tuple[int, str]:
    """Choose the close to send to the other side when ``side`` has closed.

    The code and reason are copied when the code may be sent on the wire.
    1005 (empty close frame), 1006 (no close frame at all) and 1015 only exist
    as local reports, so they become 1011 with a reason saying what happened:
    the client then never sees a bare 1005 or 1006 from the gateway.

    Args:
        rcvd: The close frame received from ``side``, ``None`` if the
            connection ended without one.
        side: Which side closed.
        sent: The close the gateway sent to ``side``, if it closed that side
            first: 1009 (``side`` sent a message over ``--max-message-size``) is
            passed on as 1009, so the other side learns why; when the gateway
            failed that side itself (a 1011, e.g. ``keepalive ping timeout``), its
            reason is the diagnosis passed on.

    Returns:
        ``(code, reason)`` for ``close()`` on the other side.
    """
    if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
        return CloseCode.MESSAGE_TOO_BIG, f"{side} sent a message over the gateway's size limit"
    if rcvd is None:
        if sent is not None and sent.code == CloseCode.INTERNAL_ERROR and sent.reason:
            return CloseCode.INTERNAL_ERROR, f"{side} {sent.reason}"
        return CloseCode.INTERNAL_ERROR, f"{side} closed without a close frame"
    if rcvd.code == CloseCode.NO_STATUS_RCVD:
        return CloseCode.INTERNAL_ERROR, f"{side} closed without a status code"
    try:
        rcvd.check()
    except ProtocolError:
        return CloseCode.INTERNAL_ERROR, f"{side} closed with code {rcvd.code}"
    return rcvd.code, rcvd.reason


def event_type(message: str | bytes) -> str:
    """Name a frame for debug logs: the realtime event ``type`` if it has one.

    Only called when debug logging is on; the relay itself never parses JSON.
    """
    if isinstance(message, bytes):
        return f"<binary {len(message)} bytes>"
    try:
        event = json.loads(message)
    except ValueError:
        return "<non-JSON text>"
    kind = event.get("type") if isinstance(event, dict) else None
    return kind if isinstance(kind, str) else "<no type>"


def _is_high_frequency(kind: str) -> bool:
    # Streaming deltas and audio appends arrive dozens per second; they go to
    # TRACE so that DEBUG stays readable.
    return kind.endswith(".delta") or kind == "input_audio_buffer.append"


@dataclass
class _Direction:
    arrow: str
    frames: int = 0


async def _pump(
    src: Connection,
    dst: Connection,
    direction: _Direction,
    logger: logging.Logger | None,
) -> ConnectionClosed | None:
    """Copy frames from ``src`` to ``dst`` until one of them closes.

    Returns:
        The ``ConnectionClosed`` raised by ``src`` (it closed), or ``None``
        when ``dst`` closed first: the pump reading ``dst`` reports that one.
    """
    writer = FrameWriter(dst)
    while True:
        try:
            message = await src.recv()
        except ConnectionClosed as exc:
            return exc
        if logger is not None:
            kind = event_type(message)
            level = TRACE if _is_high_frequency(kind) else logging.DEBUG
            logger.log(level, "%s %s", direction.arrow, kind)
        try:
            await writer.send(message)
        except ConnectionClosed:
            return None
        direction.frames += 1


_Pumps = dict[asyncio.Task[ConnectionClosed | None], tuple[Side, Connection]]


async def _first_close(
    pumps: _Pumps, idle: asyncio.Task[None] | None
) -> tuple[Side, ConnectionClosed, Connection] | None:
    """Wait until a side closes: that side, how, and the other side to close.

    ``None`` when the idle watch fired first (or both pumps stopped on the side
    they write to, which the pump reading that side then reports).
    """
    pending: set[asyncio.Task[Any]] = {*pumps, *([] if idle is None else [idle])}
    while any(not task.done() for task in pumps):
        _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task, (side, peer) in pumps.items():  # upstream first: see relay()
            if task.done() and (closed := task.result()) is not None:
                return side, closed, peer
        if idle is not None and idle.done():
            return None
    return None


def _idle(directions: tuple[_Direction, ...], limit: float) -> asyncio.Task[None]:
    """A task that ends once no frame has passed, either way, for ``limit`` seconds."""
    return asyncio.create_task(_idle_watch(directions, limit))


async def _idle_watch(directions: tuple[_Direction, ...], limit: float) -> None:
    """Return once no frame has passed, either way, for ``limit`` seconds (up to 1/4 more).

    It polls the frame counters, so the pumps pay nothing per frame for it.
    """
    loop = asyncio.get_running_loop()
    seen, since = -1, loop.time()
    while True:
        frames = sum(direction.frames for direction in directions)
        now = loop.time()
        if frames != seen:
            seen, since = frames, now
        elif now - since >= limit:
            return
        await asyncio.sleep(limit / 4)


async def relay(
    client: Connection,
    upstream: Connection,
    logger: logging.Logger,
    *,
    idle_timeout: float | None = None,
) -> RelayResult:
    """Relay frames both ways until one side closes, then close the other.

    Both pump tasks are cancelled and awaited before this returns, whatever
    happens (including cancellation), so no task outlives the session.

    Args:
        client: The connection accepted from the client.
        upstream: The open connection to the upstream.
        logger: Receives one line per frame at DEBUG/TRACE when enabled.
        idle_timeout: Close both sides once no frame has passed for this many
            seconds (the client with 1011, the upstream with 1001); ``None``: never.

    Returns:
        Frame counts and how the session ended.
    """
    # Decided once per session so that the per-frame cost with debug logging
    # off is a single ``is not None`` test.
    event_logger = logger if logger.isEnabledFor(logging.DEBUG) else None
    to_client = _Direction("upstream→client")
    to_upstream = _Direction("client→upstream")
    # Dict order matters: if both sides are found closed together, the
    # upstream's close is the one forwarded (it carries the diagnosis).
    from_upstream = asyncio.create_task(_pump(upstream, client, to_client, event_logger))
    from_client = asyncio.create_task(_pump(client, upstream, to_upstream, event_logger))
    # task -> (the side it reads, the side to close when that one closes)
    pumps: _Pumps = {
        from_upstream: ("upstream", client),
        from_client: ("client", upstream),
    }
    idle = None if idle_timeout is None else _idle((to_client, to_upstream), idle_timeout)
    watchers: list[asyncio.Task[Any]] = [*pumps, *([] if idle is None else [idle])]
    closed_by: Side | None = None
    received: Close | None = None
    forwarded: tuple[int, str] | None = None
    try:
        end = await _first_close(pumps, idle)
        if end is not None:
            closed_by, closed, other = end
            received = closed.rcvd
            forwarded = forwardable_close(received, closed_by, sent=closed.sent)
            await other.close(*forwarded)
        elif idle is not None and idle.done():
            forwarded = (CloseCode.INTERNAL_ERROR, f"idle timeout: no frame for {idle_timeout:g} s")
            await asyncio.gather(
                client.close(*forwarded), upstream.close(CloseCode.GOING_AWAY, "idle timeout")
            )
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    return RelayResult(
        frames_to_client=to_client.frames,
        frames_to_upstream=to_upstream.frames,
        closed_by=closed_by,
        received=received,
        forwarded=forwarded,
        idle=closed_by is None and forwarded is not None,
    )
