"""The official SDK through the proxy when the upstream fails: what an application sees.

A recorded cassette (``text_response``) replays with a fault on top, armed by the
plugin's ``fault`` marker, and the GA SDK talks to the fake through ``proxy/``.
"""

from __future__ import annotations

from typing import Any

import pytest
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosedError

from proxy import Gateway

from .sdk_turn import text_turn

pytestmark = [pytest.mark.asyncio, pytest.mark.cassette("text_response")]


async def converse(gateway: Gateway) -> tuple[list[Any], ConnectionClosedError]:
    """Run the recorded conversation; return the events seen and how the socket ended."""
    base = gateway.url.replace("ws://", "http://", 1)
    client = AsyncOpenAI(api_key="sk-test-sdk", base_url=f"{base}/v1", max_retries=0)
    events: list[Any] = []
    try:
        async with client.realtime.connect(model="gpt-realtime") as conn:
            with pytest.raises(ConnectionClosedError) as caught:
                await text_turn(conn, events, until=())
    finally:
        await client.close()
    return events, caught.value


@pytest.mark.fault("reset", after=5)
async def test_a_reset_mid_response_reaches_the_sdk_as_1011(gateway: Gateway) -> None:
    events, closed = await converse(gateway)
    assert len(events) == 5
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1011, "upstream closed without a close frame")


@pytest.mark.fault("error", event="response.create", error="session_expired")
async def test_session_expired_reaches_the_sdk_with_its_close(gateway: Gateway) -> None:
    events, closed = await converse(gateway)
    assert events[-1].type == "error"
    assert events[-1].error.code == "session_expired"
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4000, "invalid_request_error.session_expired")
