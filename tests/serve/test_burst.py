"""Bursts of frames written at once, over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from fakeupstream.serve.burst import FLUSH_BYTES, fast_path, send_burst

from ..helpers import TIMEOUT

Handler = Callable[[ServerConnection], Coroutine[Any, Any, None]]


async def exchange(handler: Handler) -> AsyncIterator[str | bytes]:
    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", max_size=None) as ws:
            async with asyncio.timeout(TIMEOUT):
                async for message in ws:
                    yield message


@pytest.mark.asyncio
async def test_every_frame_arrives_as_its_own_message_in_order() -> None:
    frames: list[str | bytes] = [f"text {i}" for i in range(50)]
    frames[7] = b"\x00binary\xff"
    seen: list[bool] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(fast_path(ws))
        await send_burst(ws, frames)
        await ws.close()

    assert [message async for message in exchange(handler)] == frames
    assert seen == [True]  # the installed websockets has what the fast path uses


@pytest.mark.asyncio
async def test_a_burst_larger_than_the_flush_size_is_written_in_pieces_and_all_arrives() -> None:
    frames: list[str | bytes] = [bytes([i]) * 10_000 for i in range(3 * FLUSH_BYTES // 10_000)]
    writes: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        transport_write = ws.transport.write

        def counting(data: Any) -> None:
            writes.append(len(data))
            transport_write(data)

        ws.transport.write = counting  # type: ignore[method-assign]
        await send_burst(ws, frames)
        ws.transport.write = transport_write  # type: ignore[method-assign]
        await ws.close()

    assert [message async for message in exchange(handler)] == frames
    assert 2 <= len(writes) < len(frames)
    assert max(writes) <= FLUSH_BYTES + 10_000 + 14  # never more than one frame past the limit


@pytest.mark.asyncio
async def test_sending_on_a_closed_connection_raises_connection_closed() -> None:
    outcome: list[BaseException] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.close()
        try:
            await send_burst(ws, ["a", "b", "c"])
        except ConnectionClosed as exc:
            outcome.append(exc)

    assert [message async for message in exchange(handler)] == []
    assert len(outcome) == 1


class SendOnly:
    """A connection without the attributes the fast path writes through."""

    def __init__(self) -> None:
        self.sent: list[str | bytes] = []

    async def send(self, frame: str | bytes) -> None:
        self.sent.append(frame)


@pytest.mark.asyncio
async def test_without_a_transport_every_frame_goes_through_send() -> None:
    connection = SendOnly()
    assert not fast_path(connection)  # type: ignore[arg-type]
    await send_burst(connection, ["a", b"b", "c"])  # type: ignore[arg-type]
    assert connection.sent == ["a", b"b", "c"]
