"""proxy.writer: bursts of frames become one socket write, in order, types kept."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from proxy.writer import FrameWriter

pytestmark = pytest.mark.asyncio


@contextlib.asynccontextmanager
async def pair() -> AsyncIterator[tuple[ServerConnection, ClientConnection]]:
    """A connected (server side, client side) pair on loopback."""
    accepted: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        await accepted.put(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", max_size=None) as client:
            yield await accepted.get(), client


def count_writes(connection: Any) -> list[int]:
    sizes: list[int] = []
    write = connection.transport.write

    def counting(data: bytes) -> None:
        sizes.append(len(data))
        write(data)

    connection.transport.write = counting
    return sizes


@pytest.mark.parametrize("side", ["server", "client"])  # the client side masks its frames
async def test_a_burst_is_one_write(side: str, time_limit: float) -> None:
    async with asyncio.timeout(time_limit), pair() as (server, client):
        sender, receiver = (server, client) if side == "server" else (client, server)
        writes = count_writes(sender)
        writer = FrameWriter(sender)
        sent: list[str | bytes] = [f'{{"type":"delta","n":{i}}}' for i in range(50)]
        sent[7] = b"\x00binary"
        for message in sent:
            await writer.send(message)
        assert writes == []  # nothing written until the task waits
        received = [await receiver.recv() for _ in sent]
        assert len(writes) == 1
    assert received == sent


async def test_large_frames_are_written_without_waiting(time_limit: float) -> None:
    async with asyncio.timeout(time_limit), pair() as (server, client):
        writes = count_writes(server)
        writer = FrameWriter(server)
        for _ in range(3):
            await writer.send(b"a" * 100_000)
        assert len(writes) == 3
        assert [len(await client.recv()) for _ in range(3)] == [100_000] * 3


async def test_frames_buffered_before_a_close_go_out_before_it(time_limit: float) -> None:
    async with asyncio.timeout(time_limit), pair() as (server, client):
        writer = FrameWriter(server)
        for i in range(5):
            await writer.send(str(i))
        await server.close(4000, "done")
        assert [await client.recv() for _ in range(5)] == ["0", "1", "2", "3", "4"]
        with pytest.raises(ConnectionClosed) as info:
            await client.recv()
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "done")


async def test_sending_on_a_closed_connection_raises_connection_closed(
    time_limit: float,
) -> None:
    async with asyncio.timeout(time_limit), pair() as (server, client):
        await client.close()
        writer = FrameWriter(server)
        with pytest.raises(ConnectionClosed):
            await writer.send("late")
