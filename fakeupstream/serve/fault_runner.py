"""Execute faults on a real socket: the I/O half of :mod:`fakeupstream.faults`.

The core decides which fault fires when; this module does what each one means on
the wire. At the upgrade (:func:`upgrade_fault`): refuse with an HTTP status, hold
the handshake, or accept and close at once. During the session (:class:`FaultRunner`,
driven by the server's replay loop): close, reset the TCP connection (``SO_LINGER``
0, then abort: the peer gets RST and no close frame), stall, drip frames out in
fragments, send an ``error`` event, or ignore all it receives so that pings go
unanswered (:class:`DeafConnection`).

Only documented APIs are used: asyncio's transport (``abort``, ``get_extra_info``),
the socket option, ``websockets``' ``send`` of an iterable (a fragmented message)
and its sans-I/O protocol's ``close_sent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import struct
from collections.abc import AsyncIterator, Awaitable
from typing import cast

from websockets.asyncio.server import ServerConnection

from ..cassette import CloseStep, encode_event
from ..faults import Fault, FaultKind, FaultSchedule, FiredFault, error_fault_event, refusal
from ..planning import ReplayPlan
from ..replay import ReplaySession
from ..responses import HttpResponse

__all__ = ["DeafConnection", "FaultRunner", "deafenable", "upgrade_fault"]

_DRIP_TICK = 0.05  # seconds between two fragments of a dripped frame


class DeafConnection(ServerConnection):
    """A server connection that can go deaf: the ``no_pong`` fault.

    Once deaf, received bytes are discarded, so pings get no pong and client frames
    are never seen; the end of the TCP connection is still noticed. When the server
    itself closes a deaf connection, the peer's answer cannot be read, so the first
    bytes after our close frame abort the connection instead of waiting for the
    closing handshake's timeout.
    """

    deaf = False

    def go_deaf(self) -> None:
        """Ignore every byte received from now on."""
        self.deaf = True

    def data_received(self, data: bytes) -> None:
        if not self.deaf:
            super().data_received(data)
        elif self.protocol.close_sent is not None and self.transport is not None:
            self.transport.abort()


def deafenable(base: type[ServerConnection]) -> type[ServerConnection]:
    """``base`` with :class:`DeafConnection` mixed in (for ``serve(create_connection=)``)."""
    return cast(type[ServerConnection], type("FaultConnection", (DeafConnection, base), {}))


def upgrade_fault(
    connection: ServerConnection, plan: ReplayPlan
) -> tuple[ReplayPlan, HttpResponse | Awaitable[None] | None]:
    """Apply the plan's upgrade fault, if it has one.

    Returns:
        The plan to replay (an ``accept_then_close`` replaces its steps by the
        close), and what ``process_request`` answers: an HTTP refusal, an awaitable
        that holds the handshake (``delay``), or ``None`` to go on.
    """
    fault = FaultSchedule(plan.faults).upgrade if plan.faults else None
    if fault is None:
        return plan, None
    plan.report.faults.append(FiredFault(fault.to_dict(), frames=0, at=0.0))
    if fault.kind is FaultKind.REFUSE:
        response = refusal(fault)
        plan.report.refuse(f"HTTP {response.status}", answered_by=f"fault: {fault.describe()}")
        return plan, response
    if fault.kind is FaultKind.DELAY:
        assert fault.seconds is not None
        return plan, _hold(connection, fault.seconds)
    assert fault.close is not None
    plan.report.answer(f"fault: {fault.describe()}")
    close = CloseStep(*fault.close)
    return dataclasses.replace(plan, steps=(close,), wire=None), None


async def _hold(connection: ServerConnection, seconds: float) -> None:
    """Hold the handshake ``seconds``, or until the client gives up."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await connection.wait_closed()


class FaultRunner:
    """Fires one connection's session faults as the replay loop sends and receives.

    Each method returns ``True`` once a fault has ended the session (the report is
    then finished); the loop must stop.

    Args:
        ws: the connection.
        plan: its replay plan (faults, report, event ids).
        session: the replay engine, finished here when a fault ends the session.
        start: when the connection was accepted, on the loop's clock.
    """

    def __init__(
        self, ws: ServerConnection, plan: ReplayPlan, session: ReplaySession, start: float
    ) -> None:
        self._ws = ws
        self._plan = plan
        self._session = session
        self._start = start
        self._schedule = FaultSchedule(plan.faults)

    @classmethod
    def for_plan(
        cls, ws: ServerConnection, plan: ReplayPlan, session: ReplaySession, start: float
    ) -> FaultRunner | None:
        """A runner, or ``None`` when the plan has no session fault (the fast path)."""
        if not plan.faults:
            return None
        runner = cls(ws, plan, session, start)
        return runner if runner._schedule.active else None

    async def start(self) -> bool:
        """Fire what is due before any frame (``after: 0``)."""
        return await self._fire()

    async def send(self, data: str | bytes) -> bool:
        """Send one server frame as the faults say, then fire what became due."""
        for frame in self._schedule.next_frame(data):
            if self._schedule.rate is None:
                await self._ws.send(frame)
            else:
                await self._ws.send(_drip(frame, self._schedule.rate))
        return await self._fire()

    async def send_all(self, frames: list[str | bytes]) -> int | None:
        """Send frames one by one through :meth:`send`.

        Returns:
            ``None`` when every frame went out and the session goes on; once a fault
            ended the session, how many of ``frames`` went out before it did.
        """
        for position, data in enumerate(frames):
            if await self.send(data):
                return position + 1
        return None

    async def received(self, data: str | bytes) -> bool:
        """Note a client frame, then fire what it triggers (``event: TYPE``)."""
        self._schedule.received(data)
        return await self._fire()

    async def _fire(self) -> bool:
        report = self._plan.report
        for fault in self._schedule.due():
            at = round(asyncio.get_running_loop().time() - self._start, 6)
            report.faults.append(FiredFault(fault.to_dict(), frames=self._schedule.sent, at=at))
            if await self._execute(fault):
                # The fault cut the rest of the timeline off on purpose: not a failure.
                report.unplayed.clear()
                return True
        return False

    async def _execute(self, fault: Fault) -> bool:
        ws = self._ws
        if fault.kind is FaultKind.ERROR:
            await ws.send(encode_event(error_fault_event(fault, self._plan.ids)))
            self._schedule.sent += 1
        if fault.close is not None:  # close, or a fatal error
            code, reason = fault.close
            await ws.close(code, reason)
            self._session.finish(code, reason, by="server")
            return True
        if fault.kind is FaultKind.RESET:
            _reset(ws)
            self._session.finish(None, "fault: TCP reset", by="server")
            return True
        if fault.kind is FaultKind.STALL:
            if not await _stall(ws, fault.seconds):
                return False
            rcvd = ws.protocol.close_rcvd  # the client gave up during the stall
            self._session.finish(
                None if rcvd is None else rcvd.code,
                None if rcvd is None else rcvd.reason,
                by="client",
            )
            return True
        if fault.kind is FaultKind.NO_PONG:
            assert isinstance(ws, DeafConnection), "serve with create_connection=deafenable(...)"
            ws.go_deaf()
        return False  # drop, duplicate, truncate and drip act on the frames to come


def _reset(ws: ServerConnection) -> None:
    """Abort the TCP connection with a reset: no close frame, no FIN."""
    transport = ws.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger on, zero seconds: closing sends RST and drops unsent data.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _stall(ws: ServerConnection, seconds: float | None) -> bool:
    """Send nothing for ``seconds`` (``None``: until the peer goes); ``True`` if it went."""
    try:
        async with asyncio.timeout(seconds):
            await ws.wait_closed()
    except TimeoutError:
        return False
    return True


async def _drip(frame: str | bytes, rate: int) -> AsyncIterator[str | bytes]:
    """The frame in fragments, ``rate`` bytes per second (text cut between characters)."""
    size = max(1, int(rate * _DRIP_TICK))
    data = frame.encode() if isinstance(frame, str) else frame
    if not data:
        yield frame
    start = 0
    while start < len(data):
        end = min(start + size, len(data))
        if isinstance(frame, str):
            while end < len(data) and data[end] & 0xC0 == 0x80:  # inside a UTF-8 character
                end += 1
        piece = data[start:end]
        yield piece.decode() if isinstance(frame, str) else piece
        start = end
        if start < len(data):
            await asyncio.sleep(len(piece) / rate)
