"""The front door over real sockets: admin and WebSocket on one port, one error shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import websockets

from fakeupstream import FakeUpstream

from ..helpers import TIMEOUT, http, recv_event, ws_connect


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(cassette="session") as server:
        yield server


def test_the_installed_websockets_is_one_the_front_door_supports() -> None:
    # front_door.py subclasses websockets' ServerConnection through serve(create_connection=)
    # and overrides its asyncio data_received; 14 through 17 are tested in .ci/run.
    major = int(websockets.version.version.split(".")[0])
    assert 14 <= major <= 17, websockets.version.version


async def raw_request(fake: FakeUpstream, *chunks: bytes) -> tuple[int, dict[str, Any]]:
    """Send ``chunks`` with a pause between them; return the status and the JSON body."""
    host, port = fake.http_url.removeprefix("http://").rsplit(":", 1)
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection(host, int(port))
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.01)
        raw = await reader.read()
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def assert_openai_error(body: dict[str, Any], code: str) -> None:
    error = body["error"]
    assert {"type", "code", "message", "param"} <= error.keys(), error
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "target", "status", "code"),
    [
        ("GET", "/__fakeupstream/nothing", 404, "unknown_endpoint"),
        ("GET", "/__fakeupstream/cassette?name=session", 405, "method_not_allowed"),
        ("POST", "/__fakeupstream/cassette", 400, "missing_name"),
        ("POST", "/__fakeupstream/cassette?name=nope", 404, "unknown_cassette"),
        ("POST", "/v1/realtime?model=m", 405, "bad_method"),
        ("GET", "/cassettes/nope/v1/realtime?model=m", 404, "unknown_cassette"),
        ("GET", "/v2/other", 404, "not_found"),
    ],
)
async def test_every_http_error_has_the_openai_error_shape(
    fake: FakeUpstream, method: str, target: str, status: int, code: str
) -> None:
    got, body = await http(fake.http_url, method, target)
    assert got == status
    assert_openai_error(body, code)


@pytest.mark.asyncio
async def test_a_request_head_in_pieces_is_read_whole(fake: FakeUpstream) -> None:
    status, body = await raw_request(
        fake, b"GET /__fakeupstream/hea", b"lth HTTP/1.1\r\nHost: x\r\n", b"\r\n"
    )
    assert (status, body) == (200, {"status": "ok", "cassette": "session"})


@pytest.mark.asyncio
async def test_a_malformed_request_line_gets_400(fake: FakeUpstream) -> None:
    status, body = await raw_request(fake, b"NONSENSE\r\n\r\n")
    assert status == 400
    assert_openai_error(body, "bad_request")


@pytest.mark.asyncio
async def test_an_unparseable_target_gets_400_not_a_server_error(fake: FakeUpstream) -> None:
    status, body = await http(fake.http_url, "GET", "//[::1/v1/realtime?model=m")
    assert status == 400
    assert_openai_error(body, "invalid_request_target")
    assert fake.errors == []


@pytest.mark.asyncio
async def test_admin_and_websocket_connections_interleave_on_one_port(fake: FakeUpstream) -> None:
    async with ws_connect(f"{fake.url}/v1/realtime?model=gpt-realtime") as ws:
        assert (await http(fake.http_url, "GET", "/__fakeupstream/health"))[0] == 200
        assert (await recv_event(ws))["type"] == "session.created"
    await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
    [report] = fake.reports()
    assert report.outcome == "replayed"
