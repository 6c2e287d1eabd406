"""The gateway's failure contract, fault by fault: one test per row of docs/faults.md.

Client → the gateway (``proxy/``) → the fake upstream, which replays
``stream_then_close`` (twenty text deltas, then close 4002) with the fault armed
through its admin API. Timeouts are small so the whole file runs in a few seconds;
each wait is bounded by ``time_limit``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from test_proxy_cli import start_process  # this directory is on sys.path (no __init__.py)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fakeupstream import FakeUpstream
from proxy import Gateway
from tests.helpers import http

CASSETTES = Path(__file__).parent / "cassettes"
Dial = Any

STREAM = "stream_then_close"
FRAMES = 20
# Small keepalive settings for the rows that need them; the defaults (20 s) elsewhere.
FAST = {"ping_interval": 0.1, "ping_timeout": 0.2, "close_timeout": 0.2}


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(CASSETTES, cassette=STREAM) as server:
        yield server


async def arm(fake: FakeUpstream, query: str) -> None:
    status, body = await http(fake.http_url, "POST", f"/__fakeupstream/fault?{query}")
    assert status == 200, body


async def until_closed(ws: ClientConnection, limit: float) -> tuple[list[Any], int, str]:
    """Every event until the gateway closes, then the close code and reason it sent."""
    events = []
    try:
        async with asyncio.timeout(limit):
            while True:
                message = await ws.recv()
                try:
                    events.append(json.loads(message))
                except ValueError:
                    events.append(message)  # a truncated frame, relayed as it came
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "the gateway must always send a close frame"
        return events, closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("unreachable")  # pragma: no cover


async def report(fake: FakeUpstream, limit: float) -> Any:
    async with asyncio.timeout(limit):
        await fake.wait_idle()
    return fake.reports()[-1]


# -- at the upgrade: the client gets an HTTP answer ---------------------------------------


@pytest.mark.asyncio
async def test_refuse_429_reaches_the_client_with_retry_after(
    fake: FakeUpstream, proxy: Any, dial: Dial
) -> None:
    gateway: Gateway = await proxy(fake.http_url)
    await arm(fake, "kind=refuse&status=429&seconds=7")
    with pytest.raises(InvalidStatus) as caught:
        async with dial(gateway):
            pass
    response = caught.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert json.loads(response.body)["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.asyncio
async def test_refuse_503_reaches_the_client(fake: FakeUpstream, proxy: Any, dial: Dial) -> None:
    gateway: Gateway = await proxy(fake.http_url)
    await arm(fake, "kind=refuse&status=503")
    with pytest.raises(InvalidStatus) as caught:
        async with dial(gateway):
            pass
    assert caught.value.response.status_code == 503
    assert json.loads(caught.value.response.body)["error"]["type"] == "server_error"


@pytest.mark.asyncio
async def test_delay_beyond_the_connect_timeout_is_504(
    fake: FakeUpstream, proxy: Any, dial: Dial, time_limit: float
) -> None:
    gateway: Gateway = await proxy(fake.http_url, connect_timeout=0.2)
    await arm(fake, "kind=delay&seconds=30")
    with pytest.raises(InvalidStatus) as caught:
        async with asyncio.timeout(time_limit), dial(gateway):
            pass
    assert caught.value.response.status_code == 504
    assert json.loads(caught.value.response.body)["error"]["code"] == "upstream_timeout"


@pytest.mark.asyncio
async def test_accept_then_close_passes_code_and_reason(
    fake: FakeUpstream, proxy: Any, dial: Dial, time_limit: float
) -> None:
    gateway: Gateway = await proxy(fake.http_url)
    await arm(fake, "kind=accept_then_close&code=4000&reason=busy")
    async with dial(gateway) as ws:
        events, code, reason = await until_closed(ws, time_limit)
    assert (events, code, reason) == ([], 4000, "busy")


# -- during the session: the client gets a close -------------------------------------------


@pytest.mark.asyncio
async def test_close_4000_with_reason_passes_through(
    fake: FakeUpstream, proxy: Any, dial: Dial, time_limit: float
) -> None:
    gateway: Gateway = await proxy(fake.http_url)
    await arm(fake, "kind=close&after=1&code=4000&reason=custom")
    async with dial(gateway) as ws:
        events, code, reason = await until_closed(ws, time_limit)
    assert len(events) == 1
    assert (code, reason) == (4000, "custom")


@pytest.mark.asyncio
async def test_reset_mid_stream_is_1011_within_one_second(
    fake: FakeUpstream, proxy: Any, dial: Dial
) -> None:
    gateway: Gateway = await proxy(fake.http_url)
    await arm(fake, "kind=reset&after=2")
    async with dial(gateway) as ws:
        events, code, reason = await until_closed(ws, 1.0)
    assert [event["delta"] for event in events] == ["chunk 0", "chunk 1"]
    assert (code, reason) == (1011, "upstream closed without a close frame")


@pytest.mark.asyncio
async def test_stall_is_closed_by_the_idle_timeout_on_both_sides(
    fake: FakeUpstream, proxy: Any, dial: Dial, time_limit: float
) -> None:
    gateway: Gateway = await proxy(fake.http_url, idle_timeout=0.2)
    await arm(fake, "kind=stall&after=3")
    async with dial(gateway) as ws:
        events, code, reason = await until_closed(ws, time_limit)
    assert len(events) == 3
    assert (code, reason) == (1011, "idle timeout: no frame for 0.2 s")
    upstream = await report(fake, time_limit)
    assert (upstream.closed_by, upstream.close_code, upstream.close_reason) == (
        "client",
        1001,
        "idle timeout",
    )


@pytest.mark.asyncio
async def test_a_short_stall_under_the_idle_timeout_is_waited_out(
    fake: FakeUpstream, proxy: Any, dial: Dial, time_limit: float
) -> None:
    gateway: Gateway = await proxy(fake.http_url, idle_timeout=1.0)
    await arm(fake, "kind=stall&after=3&seconds=0.1")
    async with dial(gateway) as ws:
        events, code, _ = await until_closed(ws, time_limit)
    assert (len(events), code) == (FRAMES, 4002)


@pytest.mark.asyncio
async def test_no_pong_is_detected_by_the_keepalive(
    proxy: Any, dial: Dial, time_limit: float
) -> None:
    # The bundled `session` cassette: session.created, then an open, idle session.
    async with FakeUpstream(cassette="session") as fake:
        gateway: Gateway = await proxy(fake.http_url, **FAST)
        await arm(fake, "kind=no_pong&after=1")
        async with dial(gateway) as ws:
            events, code, reason = await until_closed(ws, time_limit)
        assert [event["type"] for event in events] == ["session.created"]
        assert (code, reason) == (1011, "upstream keepalive ping timeout")
        assert [f.frames for f in (await report(fake, time_limit)).faults] == [1]


@pytest.mark.asyncio
async def test_session_expired_error_then_its_close(
    fake: FakeUpstream, proxy: Any, dial: Dial, time_limit: float
) -> None:
    gateway: Gateway = await proxy(fake.http_url)
    await arm(fake, "kind=error&after=2&error=session_expired")
    async with dial(gateway) as ws:
        events, code, reason = await until_closed(ws, time_limit)
    assert events[-1]["error"]["code"] == "session_expired"
    assert len(events) == 3
    assert (code, reason) == (4000, "invalid_request_error.session_expired")


@pytest.mark.asyncio
async def test_server_error_is_relayed_and_the_session_goes_on(
    fake: FakeUpstream, proxy: Any, dial: Dial, time_limit: float
) -> None:
    gateway: Gateway = await proxy(fake.http_url)
    await arm(fake, "kind=error&after=2&error=server_error")
    async with dial(gateway) as ws:
        events, code, reason = await until_closed(ws, time_limit)
    assert events[2]["error"]["type"] == "server_error"
    assert len(events) == FRAMES + 1
    assert (code, reason) == (4002, "session expired")


# -- during the session: frames relayed as they come ----------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "count"),
    [("drop&after=4", FRAMES - 1), ("duplicate&after=4", FRAMES + 1), ("truncate&after=4", FRAMES)],
)
async def test_dropped_duplicated_truncated_frames_are_relayed_as_sent(
    fake: FakeUpstream, proxy: Any, dial: Dial, time_limit: float, fault: str, count: int
) -> None:
    gateway: Gateway = await proxy(fake.http_url)
    await arm(fake, f"kind={fault}")
    async with dial(gateway) as ws:
        events, code, _ = await until_closed(ws, time_limit)
    assert len(events) == count
    assert code == 4002
    if fault.startswith("truncate"):
        assert isinstance(events[4], str)  # the gateway never parses what it relays


@pytest.mark.asyncio
async def test_dripped_frames_arrive_whole(
    fake: FakeUpstream, proxy: Any, dial: Dial, time_limit: float
) -> None:
    gateway: Gateway = await proxy(fake.http_url)
    await arm(fake, "kind=drip&after=17&rate=2000")
    async with dial(gateway) as ws:
        events, code, _ = await until_closed(ws, time_limit)
    assert [event["delta"] for event in events] == [f"chunk {i}" for i in range(FRAMES)]
    assert code == 4002


# -- the acceptance, through `python -m proxy` -------------------------------------


@pytest.mark.asyncio
async def test_acceptance_through_the_proxy_process(fake: FakeUpstream, time_limit: float) -> None:
    process = await start_process("--port", "0", "--upstream", fake.http_url)
    try:
        async with asyncio.timeout(time_limit * 3):  # includes interpreter start-up
            assert process.stdout is not None
            line = (await process.stdout.readline()).decode()
            assert line.startswith("listening on ws://127.0.0.1:"), line
            gateway = f"{line.split()[-1]}/v1/realtime?model=gpt-realtime"
            auth = {"Authorization": "Bearer sk-test-proxy"}

            await arm(fake, "kind=reset&after=2")
            async with _connect(gateway, auth) as ws:
                events, code, _ = await until_closed(ws, 1.0)
            assert (len(events), code) == (2, 1011)

            await arm(fake, "kind=refuse&status=429")
            with pytest.raises(InvalidStatus) as caught:
                async with _connect(gateway, auth):
                    pass
            assert caught.value.response.status_code == 429

            await arm(fake, "kind=close&after=1&code=4000&reason=custom")
            async with _connect(gateway, auth) as ws:
                events, code, reason = await until_closed(ws, time_limit)
            assert (len(events), code, reason) == (1, 4000, "custom")
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


def _connect(url: str, headers: dict[str, str]) -> connect:
    return connect(url, additional_headers=headers, compression=None, max_size=None)
