"""proxy.relay and proxy.logs: close mapping, event naming, and what reaches the logs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from fakeupstream import FakeUpstream
from proxy.logs import TRACE, RedactSecrets
from proxy.relay import event_type, forwardable_close


async def read_until_closed(ws: Any) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.recv()


@pytest.mark.parametrize(
    ("rcvd", "side", "expected"),
    [
        (Close(1000, "bye"), "client", (1000, "bye")),
        (Close(1001, ""), "upstream", (1001, "")),
        (Close(3000, "invalid_request_error"), "upstream", (3000, "invalid_request_error")),
        (
            Close(4000, "invalid_request_error.beta_api_shape_disabled"),
            "upstream",
            (4000, "invalid_request_error.beta_api_shape_disabled"),
        ),
        (Close(1011, "boom"), "upstream", (1011, "boom")),
        (Close(4999, "x"), "client", (4999, "x")),
        (None, "upstream", (1011, "upstream closed without a close frame")),
        (None, "client", (1011, "client closed without a close frame")),
        (Close(1005, ""), "upstream", (1011, "upstream closed without a status code")),
        (Close(1006, ""), "upstream", (1011, "upstream closed with code 1006")),
        (Close(1015, ""), "client", (1011, "client closed with code 1015")),
        (Close(2000, ""), "upstream", (1011, "upstream closed with code 2000")),
    ],
)
def test_forwardable_close(rcvd: Close | None, side: Any, expected: tuple[int, str]) -> None:
    assert forwardable_close(rcvd, side) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('{"type":"response.output_text.delta","delta":"x"}', "response.output_text.delta"),
        ('{"session":{"type":"realtime"},"type":"session.update"}', "session.update"),
        ('{"no":"type"}', "<no type>"),
        ('{"type": 3}', "<no type>"),
        ("[1, 2]", "<no type>"),
        ("not json", "<non-JSON text>"),
        (b"\x00\x01", "<binary 2 bytes>"),
    ],
)
def test_event_type(message: str | bytes, expected: str) -> None:
    assert event_type(message) == expected


def test_redaction_filter_hides_credential_headers() -> None:
    def redacted(name: str, value: str) -> object:
        record = logging.LogRecord("x", logging.DEBUG, "f", 1, "> %s: %s", (name, value), None)
        RedactSecrets().filter(record)
        return record.getMessage()

    assert redacted("Authorization", "Bearer sk-1") == "> Authorization: <redacted>"
    assert redacted("api-key", "sk-1") == "> api-key: <redacted>"
    assert redacted("Sec-WebSocket-Protocol", "realtime, openai-insecure-api-key.sk-1") == (
        "> Sec-WebSocket-Protocol: <redacted>"
    )
    assert redacted("Sec-WebSocket-Protocol", "realtime") == "> Sec-WebSocket-Protocol: realtime"
    assert redacted("Host", "h") == "> Host: h"


@pytest.mark.asyncio
async def test_logs_sessions_and_events_but_never_a_key(
    proxy: Any, fake: FakeUpstream, dial: Any, time_limit: float, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(TRACE)
    fake.use("beta_header_rejected")
    gateway = await proxy(
        fake.http_url, upstream_headers=["OpenAI-Beta: realtime=v1", "api-key: sk-secret-header"]
    )
    async with asyncio.timeout(time_limit):
        async with dial(gateway, headers={"Authorization": "Bearer sk-secret-client"}) as ws:
            await ws.recv()
            await ws.wait_closed()
        await fake.wait_idle()
        await gateway.aclose()  # the session-end line is written before this returns

    # The gateway's records only: the test's client and the fake log their own.
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("proxy")]
    assert not [m for m in messages if "sk-secret" in m]
    # DEBUG was really on, on both hops:
    assert "< Authorization: <redacted>" in messages
    assert "> Authorization: <redacted>" in messages
    assert "> api-key: <redacted>" in messages
    session = [r for r in caplog.records if r.name == "proxy.session"]
    start = next(r.getMessage() for r in session if " start " in r.getMessage())
    end = next(r.getMessage() for r in session if " end " in r.getMessage())
    assert "model=gpt-realtime" in start
    assert "model=gpt-realtime" in end
    assert "duration=" in end
    assert "frames upstream->client=1 client->upstream=0" in end
    assert "closed_by=upstream close=4000 forwarded=4000" in end
    assert [r.levelno for r in session if r.getMessage().endswith("error")] == [logging.DEBUG]


@pytest.mark.asyncio
async def test_high_frequency_events_log_below_debug(
    proxy: Any,
    fake_local: FakeUpstream,
    dial: Any,
    time_limit: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(TRACE, logger="proxy.session")
    gateway = await proxy(fake_local.cassette_url("stream_then_close"))
    async with asyncio.timeout(time_limit), dial(gateway) as ws:
        await read_until_closed(ws)  # unread frames would hold the close back
        await gateway.aclose()
    deltas = [r for r in caplog.records if r.getMessage().endswith("response.output_text.delta")]
    assert len(deltas) == 20
    assert {r.levelno for r in deltas} == {TRACE}
