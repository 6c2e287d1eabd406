"""The gateway's handshake over real sockets: what a client gets before any frame.

The upstream is opened before the client's upgrade is accepted, so every
failure reaches the client as an HTTP status with a JSON body, never as a 101
followed by a dropped socket.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response

from fakeupstream import FakeUpstream

pytestmark = pytest.mark.asyncio

MODEL = "gpt-realtime"
AUTH = {"Authorization": "Bearer sk-test-proxy"}


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def refused(dial: Any, gateway: Any, **kwargs: Any) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        async with dial(gateway, **kwargs):
            pass
    return info.value


def error_of(exc: InvalidStatus) -> dict[str, Any]:
    assert exc.response.headers["Content-Type"] == "application/json"
    error: dict[str, Any] = json.loads(exc.response.body)["error"]
    return error


async def test_other_paths_are_404_without_upstream_work(
    proxy: Any, fake: FakeUpstream, dial: Any
) -> None:
    gateway = await proxy(fake.http_url)
    with pytest.raises(InvalidStatus) as info:
        await connect(f"{gateway.url}/v1/chat?model={MODEL}", additional_headers=AUTH)
    exc = info.value
    assert exc.response.status_code == 404
    assert error_of(exc)["code"] == "unknown_url"
    assert fake.reports() == []


async def test_missing_model_is_400_without_upstream_work(
    proxy: Any, fake: FakeUpstream, dial: Any
) -> None:
    gateway = await proxy(fake.http_url)
    exc = await refused(dial, gateway, model="")
    assert exc.response.status_code == 400
    assert error_of(exc)["code"] == "missing_model"
    assert fake.reports() == []


async def test_missing_key_is_401_without_upstream_work(
    proxy: Any, fake: FakeUpstream, dial: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROXY_TEST_KEY", raising=False)
    gateway = await proxy(fake.http_url, api_key_env="PROXY_TEST_KEY")
    exc = await refused(dial, gateway, headers={})
    assert exc.response.status_code == 401
    assert error_of(exc)["code"] == "missing_api_key"
    assert fake.reports() == []


async def test_upstream_down_is_502(proxy: Any, dead_upstream: str, dial: Any) -> None:
    gateway = await proxy(dead_upstream)
    exc = await refused(dial, gateway)
    assert exc.response.status_code == 502
    assert error_of(exc) == {
        "type": "upstream_error",
        "code": "upstream_unreachable",
        "message": "Could not open the upstream WebSocket: connection refused.",
        "param": None,
    }


async def test_upstream_slow_to_answer_is_504(
    proxy: Any, silent_upstream: Any, dial: Any, time_limit: float
) -> None:
    gateway = await proxy(silent_upstream.http_url, connect_timeout=0.2)
    started = time.monotonic()
    async with asyncio.timeout(time_limit):
        exc = await refused(dial, gateway)
    assert exc.response.status_code == 504
    assert error_of(exc)["code"] == "upstream_timeout"
    assert time.monotonic() - started >= 0.2


async def test_upstream_refusal_status_and_body_pass_through(
    proxy: Any, fake_local: FakeUpstream, dial: Any
) -> None:
    gateway = await proxy(fake_local.cassette_url("refuse_429"))
    exc = await refused(dial, gateway)
    assert exc.response.status_code == 429
    assert exc.response.headers["Retry-After"] == "7"
    assert error_of(exc) == {
        "type": "requests",
        "code": "rate_limit_exceeded",
        "message": "Too many sessions.",
        "param": None,
    }


async def test_upstream_redirect_is_passed_back_not_followed(
    proxy: Any, fake: FakeUpstream, dial: Any
) -> None:
    # Following it would hand the client's key to whatever host the redirect names.
    def redirect(connection: ServerConnection, request: Request) -> Response:
        location = f"{fake.url}/v1/realtime?model={MODEL}"
        return Response(302, "Found", Headers([("Location", location)]), b"")

    async with serve(echo, "127.0.0.1", 0, process_request=redirect) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        gateway = await proxy(f"http://127.0.0.1:{port}")
        exc = await refused(dial, gateway)
    assert exc.response.status_code == 302
    assert "Location" not in exc.response.headers
    assert fake.reports() == []


async def test_upstream_connect_in_flight_does_not_hold_shutdown(
    proxy: Any, silent_upstream: Any, dial: Any, time_limit: float
) -> None:
    gateway = await proxy(silent_upstream.http_url, connect_timeout=60)
    client = asyncio.create_task(refused(dial, gateway))
    async with asyncio.timeout(time_limit):
        await silent_upstream.accepted.wait()
        await gateway.aclose()
        exc = await client
    assert exc.response.status_code == 503
    assert error_of(exc)["code"] == "shutting_down"
