"""Fixtures for the gateway's tests: fake upstreams, stub upstreams, a client dialer.

Everything listens on 127.0.0.1 with an ephemeral port and is stopped at
teardown. Waits are bounded by one timeout, scaled by the environment variable
``PROXY_TEST_TIMEOUT_SCALE`` on slow machines; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from fakeupstream import FakeUpstream
from proxy import Gateway

CASSETTES = Path(__file__).parent / "cassettes"
AUTH = {"Authorization": "Bearer sk-test-proxy"}
MODEL = "gpt-realtime"


@pytest.fixture
def time_limit() -> float:
    """Seconds any single wait in a test may take before the test fails."""
    return 2.0 * float(os.environ.get("PROXY_TEST_TIMEOUT_SCALE", "1"))


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    """The fake upstream with the bundled cassettes; ``session`` by default."""
    async with FakeUpstream(cassette="session") as server:
        yield server


@pytest_asyncio.fixture
async def fake_local() -> AsyncIterator[FakeUpstream]:
    """The fake upstream with this directory's cassettes (streams, refusals)."""
    async with FakeUpstream(cassette_dir=CASSETTES) as server:
        yield server


Dial = Callable[..., contextlib.AbstractAsyncContextManager[ClientConnection]]


@pytest.fixture
def dial() -> Dial:
    """``async with dial(gw, headers=..., model=...) as ws``: a client of the gateway.

    Sends ``AUTH`` unless ``headers`` is given; like the GA SDK, it offers no
    compression (unless ``compression="deflate"``) and sets no size limit.
    """

    def open_client(
        gateway: Gateway,
        headers: Mapping[str, str] | None = None,
        model: str = MODEL,
        compression: str | None = None,
    ) -> contextlib.AbstractAsyncContextManager[ClientConnection]:
        return connect(
            gateway.realtime_url(model),
            additional_headers=dict(AUTH if headers is None else headers),
            compression=compression,
            max_size=None,
        )

    return open_client


@dataclass
class Stub:
    """A bare ``websockets`` upstream, for what the fake is not meant to do.

    (Report the raw handshake headers, echo binary frames, vanish without a
    close frame, flood.) ``requests`` holds each upgrade request it received.
    """

    http_url: str
    requests: list[Request] = field(default_factory=list)


StubHandler = Callable[[ServerConnection], Awaitable[None]]


@pytest_asyncio.fixture
async def stub_upstream() -> AsyncIterator[Callable[[StubHandler], Awaitable[Stub]]]:
    """Factory: ``stub = await stub_upstream(handler)`` starts a bare upstream."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(handler: StubHandler) -> Stub:
            requests: list[Request] = []

            def record(connection: ServerConnection, request: Request) -> None:
                requests.append(request)

            server = await stack.enter_async_context(
                serve(handler, "127.0.0.1", 0, process_request=record, max_size=None)
            )
            port = next(iter(server.sockets)).getsockname()[1]
            return Stub(http_url=f"http://127.0.0.1:{port}", requests=requests)

        yield start


@pytest.fixture
def dead_upstream() -> str:
    """An upstream base URL where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass
class Silent:
    """An upstream that accepts TCP connections and never answers the upgrade."""

    http_url: str
    accepted: asyncio.Event = field(default_factory=asyncio.Event)


@pytest_asyncio.fixture
async def silent_upstream() -> AsyncIterator[Silent]:
    """A :class:`Silent` upstream; ``accepted`` is set once a connection arrives."""
    writers: list[asyncio.StreamWriter] = []
    silent: Silent

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        silent.accepted.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    silent = Silent(http_url=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        yield silent
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
