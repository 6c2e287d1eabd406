"""Sessions through the gateway over real sockets: frames, close codes, cleanup.

The upstream is ``fakeupstream`` wherever it can play the part; a bare
``websockets`` stub stands in only for what a well-behaved fake does not do
(echo binary frames, vanish without a close frame, report raw headers).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from fakeupstream import FakeUpstream
from proxy import Gateway, ProxyConfig

pytestmark = pytest.mark.asyncio

AUTH = {"Authorization": "Bearer sk-test-proxy"}


async def recv_event(ws: Any) -> dict[str, Any]:
    message = await ws.recv()
    assert isinstance(message, str)
    event: dict[str, Any] = json.loads(message)
    return event


async def closed_with(ws: Any) -> tuple[int, str]:
    """Wait for the server's close; return what the client received."""
    with pytest.raises(ConnectionClosed) as info:
        await ws.recv()
    rcvd = info.value.rcvd
    assert rcvd is not None, "the gateway closed without a close frame"
    return rcvd.code, rcvd.reason


async def finished_report(fake: FakeUpstream, time_limit: float) -> Any:
    async with asyncio.timeout(time_limit):
        await fake.wait_idle()
    (report,) = fake.reports()
    return report


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def test_session_round_trip(
    proxy: Any, fake: FakeUpstream, dial: Any, time_limit: float
) -> None:
    gateway = await proxy(fake.http_url)
    async with asyncio.timeout(time_limit), dial(gateway) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        assert (await recv_event(ws))["type"] == "session.updated"
    report = await finished_report(fake, time_limit)
    assert report.failures() == []
    assert (report.close_code, report.closed_by) == (1000, "client")


async def test_client_beta_header_is_not_passed_upstream(
    proxy: Any, fake: FakeUpstream, dial: Any, time_limit: float
) -> None:
    fake.use("beta_header_rejected")
    gateway = await proxy(fake.http_url)
    headers = {**AUTH, "OpenAI-Beta": "realtime=v1"}
    async with asyncio.timeout(time_limit), dial(gateway, headers=headers) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        assert (await recv_event(ws))["type"] == "session.updated"
    report = await finished_report(fake, time_limit)
    assert report.outcome == "replayed"
    assert report.failures() == []


async def test_seed_bug_reproduced_by_configuration(
    proxy: Any, fake: FakeUpstream, dial: Any, time_limit: float
) -> None:
    # The Rust gateway's bug, on purpose: send OpenAI-Beta upstream. The GA API
    # (here the cassette) answers 101, an error event, close 4000. The client
    # must see exactly that, not the 1005 the Rust gateway produced.
    fake.use("beta_header_rejected")
    gateway = await proxy(fake.http_url, upstream_headers=["OpenAI-Beta: realtime=v1"])
    async with asyncio.timeout(time_limit), dial(gateway) as ws:
        event = await recv_event(ws)
        assert event["type"] == "error"
        assert event["error"]["code"] == "beta_api_shape_disabled"
        assert await closed_with(ws) == (4000, "invalid_request_error.beta_api_shape_disabled")
        assert ws.close_code == 4000
    report = await finished_report(fake, time_limit)
    assert report.outcome == "answered"


async def test_upstream_close_mid_stream_reaches_client_after_every_frame(
    proxy: Any, fake_local: FakeUpstream, dial: Any, time_limit: float
) -> None:
    gateway = await proxy(fake_local.cassette_url("stream_then_close"))
    async with asyncio.timeout(time_limit), dial(gateway) as ws:
        deltas = [(await recv_event(ws))["delta"] for _ in range(20)]
        assert deltas == [f"chunk {i}" for i in range(20)]
        assert await closed_with(ws) == (4002, "session expired")


async def test_upstream_vanishing_gives_client_1011(
    proxy: Any, stub_upstream: Any, dial: Any, time_limit: float
) -> None:
    async def send_then_vanish(ws: ServerConnection) -> None:
        await ws.send('{"type":"session.created"}')
        ws.transport.abort()  # no close frame, just a dead TCP connection

    stub = await stub_upstream(send_then_vanish)
    gateway = await proxy(stub.http_url)
    async with asyncio.timeout(time_limit), dial(gateway) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
        assert await closed_with(ws) == (1011, "upstream closed without a close frame")


async def test_upstream_empty_close_frame_gives_client_1011(
    proxy: Any, stub_upstream: Any, dial: Any, time_limit: float
) -> None:
    async def close_without_code(ws: ServerConnection) -> None:
        # websockets cannot send 1005; an empty close frame is how it gets on the wire.
        async with ws.send_context():
            ws.protocol.send_close()

    stub = await stub_upstream(close_without_code)
    gateway = await proxy(stub.http_url)
    async with asyncio.timeout(time_limit), dial(gateway) as ws:
        assert await closed_with(ws) == (1011, "upstream closed without a status code")


async def test_client_close_mid_stream_reaches_upstream(
    proxy: Any, fake: FakeUpstream, dial: Any, time_limit: float
) -> None:
    gateway = await proxy(fake.http_url)
    async with asyncio.timeout(time_limit), dial(gateway) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
        await ws.close(4100, "user hung up")
    report = await finished_report(fake, time_limit)
    assert (report.close_code, report.close_reason, report.closed_by) == (
        4100,
        "user hung up",
        "client",
    )


async def test_client_vanishing_closes_upstream_at_once(
    proxy: Any, fake: FakeUpstream, dial: Any, time_limit: float
) -> None:
    gateway = await proxy(fake.http_url)
    async with asyncio.timeout(time_limit), dial(gateway) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
        ws.transport.abort()
    report = await finished_report(fake, time_limit)
    assert (report.close_code, report.close_reason) == (
        1011,
        "client closed without a close frame",
    )


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_text_and_binary_frames_keep_their_type_and_order(
    proxy: Any, stub_upstream: Any, dial: Any, time_limit: float, compression: str | None
) -> None:
    stub = await stub_upstream(echo)
    gateway = await proxy(stub.http_url)
    big = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 3_000_000})
    sent: list[str | bytes] = ['{"type":"a"}', b"\x00\xffbin", "not json", big, b"", "é✓"]
    async with asyncio.timeout(time_limit), dial(gateway, compression=compression) as ws:
        for message in sent:
            await ws.send(message)
        received = [await ws.recv() for _ in sent]
    assert received == sent
    assert [type(m) for m in received] == [type(m) for m in sent]


async def test_pings_are_answered(
    proxy: Any, stub_upstream: Any, dial: Any, time_limit: float
) -> None:
    # Each hop answers its own pings (websockets does it); the gateway does not
    # forward ping frames, so a client ping measures the client-gateway hop.
    stub = await stub_upstream(echo)
    gateway = await proxy(stub.http_url)
    async with asyncio.timeout(time_limit), dial(gateway) as ws:
        latency = await (await ws.ping(b"x"))
        assert latency >= 0
        await ws.send("still relaying")
        assert await ws.recv() == "still relaying"


async def test_only_authorization_and_configured_headers_go_upstream(
    proxy: Any, stub_upstream: Any, dial: Any, time_limit: float
) -> None:
    stub = await stub_upstream(echo)
    gateway = await proxy(stub.http_url, upstream_headers=["X-Team: blue"])
    client_headers = {
        **AUTH,
        "OpenAI-Beta": "realtime=v1",
        "OpenAI-Organization": "org-x",
        "Origin": "http://browser.example",
        "X-Client-Thing": "1",
    }
    async with asyncio.timeout(time_limit), dial(gateway, headers=client_headers) as ws:
        await ws.send("ping")
        await ws.recv()
    (request,) = stub.requests
    assert request.path == "/v1/realtime?model=gpt-realtime"
    names = {name.lower() for name in request.headers}
    assert names == {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "user-agent",
        "authorization",
        "x-team",
    }
    assert request.headers["Authorization"] == AUTH["Authorization"]
    assert request.headers["X-Team"] == "blue"


async def test_fallback_key_is_used_when_the_client_sends_none(
    proxy: Any,
    fake: FakeUpstream,
    stub_upstream: Any,
    dial: Any,
    time_limit: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROXY_TEST_KEY", "sk-from-env")
    stub = await stub_upstream(echo)
    via_stub = await proxy(stub.http_url, api_key_env="PROXY_TEST_KEY")
    via_fake = await proxy(fake.http_url, api_key_env="PROXY_TEST_KEY")
    async with asyncio.timeout(time_limit):
        async with dial(via_stub, headers={}) as ws:
            await ws.send("ping")
            await ws.recv()
        async with dial(via_fake, headers={}) as ws:  # the fake closes 3000 without a key
            assert (await recv_event(ws))["type"] == "session.created"
    assert stub.requests[0].headers["Authorization"] == "Bearer sk-from-env"


async def test_slow_client_slows_the_upstream_down(
    proxy: Any, stub_upstream: Any, dial: Any, time_limit: float
) -> None:
    # 64 MiB is far more than the socket buffers and the two bounded receive
    # queues on the way can hold, so the upstream's sends must block until the
    # client reads. An unbounded queue in the gateway would let them all through.
    count, size = 256, 256 * 1024
    sent = 0
    all_sent = asyncio.Event()

    async def flood(ws: ServerConnection) -> None:
        nonlocal sent
        for index in range(count):
            await ws.send(index.to_bytes(4, "big") + bytes(size - 4))
            sent += 1
        all_sent.set()
        await ws.wait_closed()

    stub = await stub_upstream(flood)
    gateway = await proxy(stub.http_url)
    async with dial(gateway) as ws:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.25):
                await all_sent.wait()
        assert sent < count // 2
        async with asyncio.timeout(time_limit):
            indexes = [int.from_bytes((await ws.recv())[:4], "big") for _ in range(count)]
            await all_sent.wait()
    assert indexes == list(range(count))


async def test_gateway_shutdown_closes_both_sides_and_leaks_nothing(
    dial: Any, time_limit: float
) -> None:
    before = asyncio.all_tasks()
    async with asyncio.timeout(time_limit), FakeUpstream(cassette="session") as fake:
        async with Gateway(ProxyConfig(upstream=fake.http_url)) as gateway:
            async with dial(gateway) as ws:
                assert (await recv_event(ws))["type"] == "session.created"
                await gateway.aclose()
                assert await closed_with(ws) == (1001, "")
            await fake.wait_idle()
        (report,) = fake.reports()
        assert (report.close_code, report.closed_by) == (1001, "client")
    assert asyncio.all_tasks() - before == set()
