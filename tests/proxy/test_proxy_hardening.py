"""The gateway under hostile input: oversized frames, keys in the query, broken targets."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed

from fakeupstream import FakeUpstream
from proxy import Gateway, ProxyConfig
from proxy.__main__ import build_parser
from proxy.config import DEFAULT_MAX_MESSAGE_SIZE, ConfigError
from proxy.handshake import check_request
from proxy.logs import TRACE, RedactSecrets, redact_queries

AUTH = {"Authorization": "Bearer sk-test-proxy"}
KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


async def closed_with(ws: Any) -> tuple[int, str]:
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code, closed.rcvd.reason


@pytest.mark.asyncio
async def test_a_client_message_over_the_limit_is_closed_1009(
    stub_upstream: Any, time_limit: float
) -> None:
    seen: list[int] = []

    async def count(ws: ServerConnection) -> None:
        async for message in ws:
            seen.append(len(message))

    stub = await stub_upstream(count)
    config = ProxyConfig(upstream=stub.http_url, max_message_size=1024)
    async with (
        asyncio.timeout(time_limit),
        Gateway(config) as gateway,
        connect(gateway.realtime_url("m"), additional_headers=AUTH) as ws,
    ):
        await ws.send("x" * 1024)
        await ws.send("y" * 1025)
        code, _ = await closed_with(ws)
    assert code == 1009
    assert seen == [1024]


@pytest.mark.asyncio
async def test_an_upstream_message_over_the_limit_never_reaches_the_client(
    stub_upstream: Any, time_limit: float
) -> None:
    async def flood(ws: ServerConnection) -> None:
        await ws.send("a" * 100)
        await ws.send(b"b" * 5000)
        await ws.wait_closed()

    stub = await stub_upstream(flood)
    config = ProxyConfig(upstream=stub.http_url, max_message_size=4096)
    async with (
        asyncio.timeout(time_limit),
        Gateway(config) as gateway,
        connect(gateway.realtime_url("m"), additional_headers=AUTH) as ws,
    ):
        assert await ws.recv() == "a" * 100
        code, reason = await closed_with(ws)
    assert (code, reason) == (1009, "upstream sent a message over the gateway's size limit")


@pytest.mark.asyncio
async def test_query_values_are_redacted_in_every_log_line(
    fake: FakeUpstream, time_limit: float, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(TRACE)
    async with asyncio.timeout(time_limit), Gateway(ProxyConfig(fake.http_url)) as gateway:
        url = f"{gateway.realtime_url('gpt-realtime')}&api_key={KEY}&other=x"
        async with connect(url, additional_headers=AUTH) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("proxy")]
    assert any("api_key=<redacted>" in m for m in messages)
    assert any("model=gpt-realtime" in m for m in messages)
    assert not [m for m in messages if "sk-proj" in m or "other=x" in m]


def test_redact_queries_keeps_the_model_and_the_rest_of_the_text() -> None:
    assert (
        redact_queries(f"GET /v1/realtime?model=m&api_key={KEY}&token= HTTP/1.1")
        == "GET /v1/realtime?model=m&api_key=<redacted>&token= HTTP/1.1"
    )
    assert redact_queries("no query here") == "no query here"
    assert redact_queries("what? nothing") == "what? nothing"
    record = logging.LogRecord("proxy.session", logging.INFO, "", 0, "bad %d", ("x",), None)
    assert RedactSecrets().filter(record)  # a malformed record passes through untouched


@pytest.mark.asyncio
async def test_a_malformed_target_is_400_json(time_limit: float) -> None:
    async with asyncio.timeout(time_limit), Gateway(ProxyConfig("http://127.0.0.1:9")) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(
            b"GET //[::1/v1/realtime?model=m HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        raw = await reader.read()
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["error"]["code"] == "invalid_request_target"


def test_check_request_never_raises_on_a_broken_target() -> None:
    answer = check_request("//[::1/v1/realtime", Headers(), ProxyConfig("http://h"), {})
    assert getattr(answer, "status_code", None) == 400


def test_the_max_message_size_option() -> None:
    parser = build_parser()
    assert parser.parse_args(["--upstream", "http://h"]).max_message_size == (
        DEFAULT_MAX_MESSAGE_SIZE
    )
    assert DEFAULT_MAX_MESSAGE_SIZE == 16 * 1024 * 1024
    args = parser.parse_args(["--upstream", "http://h", "--max-message-size", "2048"])
    assert args.max_message_size == 2048
    with pytest.raises(SystemExit):
        parser.parse_args(["--upstream", "http://h", "--max-message-size", "0"])
    with pytest.raises(ConfigError, match="positive number of bytes"):
        ProxyConfig("http://h", max_message_size=0)


@pytest.mark.asyncio
async def test_a_non_ascii_request_line_is_400_json(fake: FakeUpstream, time_limit: float) -> None:
    async with asyncio.timeout(time_limit), Gateway(ProxyConfig(fake.http_url)) as gateway:
        for target, status in [
            (b"/v1/realtime?model=\xc3\xa9", b"400"),
            (b"/v1/realtime?model=gpt-realtime", b"101"),
        ]:
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            writer.write(
                b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer sk-test\r\n\r\n"
            )
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.split(b" ", 2)[1] == status
            if status == b"400":
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                body = json.loads(await reader.readexactly(length))
                assert body["error"]["code"] == "invalid_request_target"
            writer.close()
            await writer.wait_closed()


def test_a_client_gone_before_its_request_leaves_no_traceback_in_the_log() -> None:
    from websockets.exceptions import InvalidMessage

    from proxy.logs import QuietEarlyDisconnects

    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord(
            "proxy.ws.client",
            logging.ERROR,
            __file__,
            1,
            "opening handshake failed",
            None,
            (type(exc), exc, None),
        )

    gone = InvalidMessage("did not receive a valid HTTP request")
    gone.__cause__ = EOFError("connection closed while reading HTTP request line")
    assert not QuietEarlyDisconnects().filter(record(gone))
    assert QuietEarlyDisconnects().filter(record(RuntimeError("boom")))
