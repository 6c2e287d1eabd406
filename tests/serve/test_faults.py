"""Each fault on a real socket: the fake alone, a plain websockets client, loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from fakeupstream import FakeUpstream
from fakeupstream.serve.replay_loop import BATCH

from ..helpers import AUTH, TIMEOUT, http, recv_event, send_event, ws_connect

FRAMES = 20
DELTA = (
    "  - server: {{type: response.output_text.delta, event_id: event_{i:03}, delta: 'chunk {i}'}}\n"
)
STREAM = (
    "version: 1\ntimeline:\n"
    + "".join(DELTA.format(i=i) for i in range(FRAMES))
    + "  - close: {code: 4002, reason: done}\n"
)
TURN = """\
version: 1
timeline:
  - server: {type: session.created, event_id: e1}
  - client: {type: response.create}
  - server: {type: response.done, event_id: e2}
"""


@pytest_asyncio.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeUpstream]:
    (tmp_path / "stream.yaml").write_text(STREAM)
    (tmp_path / "turn.yaml").write_text(TURN)
    (tmp_path / "reset_after_5.yaml").write_text(
        STREAM.replace("timeline:", "faults: [{kind: reset, after: 5}]\ntimeline:", 1)
    )
    async with FakeUpstream(tmp_path, cassette="stream") as server:
        yield server


async def arm(fake: FakeUpstream, query: str) -> Any:
    status, body = await http(fake.http_url, "POST", f"/__fakeupstream/fault?{query}")
    assert status == 200, body
    return body


def url(fake: FakeUpstream, cassette: str = "stream") -> str:
    return f"{fake.url}/cassettes/{cassette}/v1/realtime?model=gpt-realtime"


async def frames_until_closed(ws: ClientConnection) -> tuple[list[str], ConnectionClosed]:
    """Every text frame as sent, then how the connection ended."""
    frames = []
    try:
        while True:
            async with asyncio.timeout(TIMEOUT):
                message = await ws.recv()
            assert isinstance(message, str)
            frames.append(message)
    except ConnectionClosed as closed:
        return frames, closed


async def session(
    fake: FakeUpstream, cassette: str = "stream"
) -> tuple[list[str], ConnectionClosed]:
    async with ws_connect(url(fake, cassette)) as ws:
        return await frames_until_closed(ws)


async def report_of(fake: FakeUpstream) -> Any:
    await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
    return fake.reports()[-1]


def deltas(frames: list[str]) -> list[str]:
    return [json.loads(frame)["delta"] for frame in frames]


# -- during the session -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_reset_after_two_frames_is_a_tcp_reset(fake: FakeUpstream) -> None:
    await arm(fake, "kind=reset&after=2")
    frames, closed = await session(fake)
    assert deltas(frames) == ["chunk 0", "chunk 1"]
    assert (await report_of(fake)).played == 2
    assert isinstance(closed, ConnectionClosedError)
    assert closed.rcvd is None  # no close frame
    assert isinstance(closed.__cause__, ConnectionResetError)  # RST, not FIN
    report = await report_of(fake)
    assert [(f.fault, f.frames) for f in report.faults] == [({"kind": "reset", "after": 2}, 2)]
    assert report.faults[0].at >= 0
    assert report.closed_by == "server"
    assert report.close_reason == "fault: TCP reset"
    assert report.unplayed == []
    status, body = await http(fake.http_url, "GET", "/__fakeupstream/report")
    assert status == 200
    [fired] = body["connections"][-1]["faults"]
    assert fired == {"fault": {"kind": "reset", "after": 2}, "frames": 2, "at": fired["at"]}


@pytest.mark.asyncio
async def test_close_after_one_frame_with_code_and_reason(fake: FakeUpstream) -> None:
    await arm(fake, "kind=close&after=1&code=4000&reason=custom")
    frames, closed = await session(fake)
    assert deltas(frames) == ["chunk 0"]
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4000, "custom")
    report = await report_of(fake)
    assert (report.close_code, report.close_reason, report.closed_by) == (4000, "custom", "server")
    # The engine released the whole burst, but only what went out counts as played.
    assert report.played == len(frames)


@pytest.mark.asyncio
async def test_a_cassettes_faults_combine_with_its_replay(fake: FakeUpstream) -> None:
    frames, closed = await session(fake, "reset_after_5")
    assert deltas(frames) == [f"chunk {i}" for i in range(5)]
    assert closed.rcvd is None
    assert [f.fault for f in (await report_of(fake)).faults] == [{"kind": "reset", "after": 5}]


@pytest.mark.asyncio
async def test_each_connection_has_its_own_faults(fake: FakeUpstream, tmp_path: Path) -> None:
    (tmp_path / "reconnect.yaml").write_text(
        "version: 1\nconnections:\n"
        "  - faults: [{kind: accept_then_close, code: 1011, reason: overloaded}]\n"
        "    timeline: []\n"
        "  - timeline: [{server: {type: session.created, event_id: e1}}]\n"
    )
    frames, closed = await session(fake, "reconnect")
    assert frames == []
    assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (
        1011,
        "overloaded",
    )
    async with ws_connect(url(fake, "reconnect")) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
    assert [len(report.faults) for report in fake.reports()] == [1, 0]


@pytest.mark.asyncio
async def test_a_fault_fires_on_a_client_event_type(fake: FakeUpstream) -> None:
    await arm(fake, "kind=close&event=response.create&code=4001")
    async with ws_connect(url(fake, "turn")) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
        await send_event(ws, {"type": "response.create"})
        frames, closed = await frames_until_closed(ws)
    assert frames == []  # closed before the recorded response.done
    assert closed.rcvd is not None and closed.rcvd.code == 4001
    [fired] = (await report_of(fake)).faults
    assert fired.fault == {"kind": "close", "event": "response.create", "code": 4001}
    assert fired.frames == 1


@pytest.mark.asyncio
async def test_drop_duplicate_truncate(fake: FakeUpstream) -> None:
    await arm(fake, "kind=drop&after=0")
    frames, _ = await session(fake)
    assert deltas(frames) == [f"chunk {i}" for i in range(1, FRAMES)]
    await arm(fake, "kind=duplicate&after=19")
    frames, _ = await session(fake)
    assert deltas(frames)[-3:] == ["chunk 18", "chunk 19", "chunk 19"]
    await arm(fake, "kind=truncate&after=19")
    frames, closed = await session(fake)
    whole = json.dumps(
        {"type": "response.output_text.delta", "event_id": "event_019", "delta": "chunk 19"},
        separators=(",", ":"),
    )
    assert frames[-1] == whole[: len(whole) // 2]
    assert closed.rcvd is not None and closed.rcvd.code == 4002  # the replay went on


@pytest.mark.asyncio
async def test_drip_delivers_every_frame_intact(fake: FakeUpstream) -> None:
    plain, _ = await session(fake)
    await arm(fake, "kind=drip&after=17&rate=1500")
    dripped, closed = await session(fake)
    assert dripped == plain
    assert closed.rcvd is not None and closed.rcvd.code == 4002


@pytest.mark.asyncio
async def test_drip_sends_a_frame_in_fragments(fake: FakeUpstream) -> None:
    await arm(fake, "kind=drip&rate=1000")  # 50 bytes every 50 ms
    async with ws_connect(url(fake)) as ws:
        async with asyncio.timeout(TIMEOUT):
            fragments = [fragment async for fragment in ws.recv_streaming()]
    first = "".join(str(fragment) for fragment in fragments)
    assert json.loads(first)["delta"] == "chunk 0"
    pieces = [str(fragment) for fragment in fragments if fragment]  # websockets ends with ""
    assert [len(piece.encode()) for piece in pieces] == [50, len(first.encode()) - 50]


@pytest.mark.asyncio
async def test_server_error_is_not_fatal(fake: FakeUpstream) -> None:
    await arm(fake, "kind=error&after=3&error=server_error")
    frames, closed = await session(fake)
    events = [json.loads(frame) for frame in frames]
    assert len(events) == FRAMES + 1
    error = events[3]
    assert error["type"] == "error"
    assert error["error"]["type"] == "server_error"
    assert closed.rcvd is not None and closed.rcvd.code == 4002


@pytest.mark.asyncio
async def test_session_expired_is_followed_by_its_close(fake: FakeUpstream) -> None:
    await arm(fake, "kind=error&after=3&error=session_expired")
    frames, closed = await session(fake)
    assert len(frames) == 4
    assert json.loads(frames[-1])["error"]["code"] == "session_expired"
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4000, "invalid_request_error.session_expired")


@pytest.mark.asyncio
async def test_stall_keeps_the_socket_open_and_answers_pings(fake: FakeUpstream) -> None:
    await arm(fake, "kind=stall&after=2")
    async with ws_connect(url(fake)) as ws:
        assert (await recv_event(ws))["delta"] == "chunk 0"
        assert (await recv_event(ws))["delta"] == "chunk 1"
        async with asyncio.timeout(TIMEOUT):
            await (await ws.ping())  # the connection is alive, just silent
    report = await report_of(fake)
    assert report.closed_by == "client"
    assert report.close_code == 1000
    assert [f.frames for f in report.faults] == [2]


@pytest.mark.asyncio
async def test_a_stall_for_some_seconds_then_goes_on(fake: FakeUpstream) -> None:
    await arm(fake, "kind=stall&after=10&seconds=0.1")
    frames, closed = await session(fake)
    assert len(frames) == FRAMES
    assert closed.rcvd is not None and closed.rcvd.code == 4002


@pytest.mark.asyncio
async def test_no_pong_is_caught_by_the_clients_keepalive(fake: FakeUpstream) -> None:
    await arm(fake, "kind=no_pong&event=response.create")
    async with ws_connect(
        url(fake, "turn"), ping_interval=0.05, ping_timeout=0.1, close_timeout=0.1
    ) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
        await send_event(ws, {"type": "response.create"})
        await recv_event(ws)  # response.done still goes out
        _, closed = await frames_until_closed(ws)
    assert closed.sent is not None
    assert (closed.sent.code, closed.sent.reason) == (1011, "keepalive ping timeout")
    assert [f.fault["kind"] for f in (await report_of(fake)).faults] == ["no_pong"]


@pytest.mark.asyncio
async def test_stop_does_not_wait_on_a_deaf_connection(fake: FakeUpstream) -> None:
    await arm(fake, "kind=no_pong")
    async with ws_connect(url(fake, "turn")) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
        async with asyncio.timeout(TIMEOUT):  # well under the 10 s closing handshake timeout
            await fake.stop()
        with pytest.raises(ConnectionClosed):
            await recv_event(ws)


# -- at the upgrade -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_refuse_429_with_retry_after(fake: FakeUpstream) -> None:
    await arm(fake, "kind=refuse&status=429&seconds=7")
    with pytest.raises(InvalidStatus) as caught:
        await session(fake)
    response = caught.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert json.loads(response.body)["error"]["code"] == "rate_limit_exceeded"
    report = await report_of(fake)
    assert report.outcome == "refused"
    assert report.answered_by == "fault: refuse status=429 seconds=7.0"
    assert [(f.frames, f.at) for f in report.faults] == [(0, 0.0)]


@pytest.mark.asyncio
async def test_accept_then_close(fake: FakeUpstream) -> None:
    await arm(fake, "kind=accept_then_close&code=4000&reason=busy")
    frames, closed = await session(fake)
    assert frames == []
    assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (4000, "busy")
    assert (await report_of(fake)).outcome == "answered"


@pytest.mark.asyncio
async def test_delay_holds_the_upgrade_and_gives_up_with_the_client(fake: FakeUpstream) -> None:
    await arm(fake, "kind=delay&seconds=30")
    with pytest.raises(TimeoutError):
        async with connect(url(fake), additional_headers=AUTH, open_timeout=0.2):
            pass
    report = await report_of(fake)  # idle: the hold ended when the client went
    assert report.faults[0].fault == {"kind": "delay", "seconds": 30.0}
    # The handler never ran: the server let go of the connection when its TCP ended.
    assert report.outcome == "refused"
    assert report.close_reason == "the connection ended during the handshake"


@pytest.mark.asyncio
async def test_a_short_delay_then_the_replay(fake: FakeUpstream) -> None:
    await arm(fake, "kind=delay&seconds=0.05")
    frames, _ = await session(fake)
    assert len(frames) == FRAMES


# -- arming ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_count_arms_the_next_connections_then_none(fake: FakeUpstream) -> None:
    await arm(fake, "kind=close&after=0&count=2&code=4000")
    for _ in range(2):
        frames, closed = await session(fake)
        assert frames == [] and closed.rcvd is not None and closed.rcvd.code == 4000
    assert await http(fake.http_url, "GET", "/__fakeupstream/faults") == (200, {"faults": []})
    frames, _ = await session(fake)
    assert len(frames) == FRAMES


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("query", "valid"),
    [
        ("kind=explode", "expected one of: refuse, delay, accept_then_close, close, reset"),
        ("", "expected one of: refuse, delay, accept_then_close, close, reset"),
        ("kind=reset&after=-1", "after must be 0 or more"),
        ("kind=close&code=5000", "code must be from 1000 to 4999"),
        ("kind=close&code=999", "code must be from 1000 to 4999"),
        ("kind=reset&code=4000", "it takes: after, event"),
    ],
)
async def test_a_bad_request_gets_400_and_arms_nothing(
    fake: FakeUpstream, query: str, valid: str
) -> None:
    status, body = await http(fake.http_url, "POST", f"/__fakeupstream/fault?{query}")
    assert status == 400
    assert body["error"]["code"] == "invalid_fault"
    assert valid in body["error"]["message"]
    assert body["error"]["kinds"][:3] == ["refuse", "delay", "accept_then_close"]
    assert await http(fake.http_url, "GET", "/__fakeupstream/faults") == (200, {"faults": []})


@pytest.mark.asyncio
async def test_delete_and_reset_disarm(fake: FakeUpstream) -> None:
    await arm(fake, "kind=reset")
    await arm(fake, "kind=stall&count=3")
    listing = await http(fake.http_url, "GET", "/__fakeupstream/faults")
    assert listing == (
        200,
        {"faults": [{"kind": "reset", "count": 1}, {"kind": "stall", "count": 3}]},
    )
    assert await http(fake.http_url, "DELETE", "/__fakeupstream/fault") == (200, {"disarmed": 2})
    await arm(fake, "kind=reset")
    assert (await http(fake.http_url, "POST", "/__fakeupstream/reset"))[0] == 200
    assert await http(fake.http_url, "GET", "/__fakeupstream/faults") == (200, {"faults": []})
    assert (await http(fake.http_url, "GET", "/__fakeupstream/fault"))[0] == 405


@pytest.mark.asyncio
async def test_an_armed_fault_waits_for_a_connection_that_is_replayed(fake: FakeUpstream) -> None:
    await arm(fake, "kind=close&after=1&code=4000&reason=custom")
    with pytest.raises(InvalidStatus):  # refused: no such cassette, no fault taken
        async with ws_connect(url(fake, "missing")):
            pass
    frames, closed = await session(fake)
    assert deltas(frames) == ["chunk 0"]
    assert closed.rcvd is not None and closed.rcvd.code == 4000


@pytest.mark.asyncio
async def test_a_fault_counts_frames_across_the_loops_batches(tmp_path: Path) -> None:
    after = BATCH + 44  # past the first two batches (16, then 256 steps)
    long = "".join(DELTA.format(i=i) for i in range(2 * BATCH))
    (tmp_path / "long.yaml").write_text(
        "version: 1\n"
        f"faults: [{{kind: close, after: {after}, code: 4000, reason: cut}}]\n"
        f"timeline:\n{long}"
    )
    async with FakeUpstream(tmp_path, cassette="long") as fake:
        frames, closed = await session(fake, "long")
        assert deltas(frames) == [f"chunk {i}" for i in range(after)]
        assert closed.rcvd is not None and closed.rcvd.code == 4000
        report = await report_of(fake)
        assert report.played == after
