"""The lean load client (bench/lean_client.py): a session fed bytes by hand, then whole
sessions against fakeupstream, the bare anchor, and servers that break the order."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
import yaml
from harness import (
    CausalityError,
    Exchange,
    bare_argv,
    load_exchange,
    server_process,
    write_bare_exchange,
)
from lean_client import LeanSession, Phase, SessionPlan, event_type, run_sessions
from lean_wire import CLOSE, HandshakeError, ProtocolError, accept_value, close_payload

from fakeupstream import FakeUpstream
from fakeupstream.storage.library import bundled_cassette_dir

from ..helpers import TIMEOUT
from .frames import BINARY, PING, server_frame, text, unmask

URL = "ws://127.0.0.1:9/v1/realtime?model=bench"
UPGRADED = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: " + accept_value() + b"\r\n\r\n"
)
CLOSE_1000 = server_frame(CLOSE, close_payload(1000))
SENT_AHEAD = re.escape(
    "turn 1: 'session.updated' arrived before the client frame it answers was sent"
)


@pytest.fixture(scope="module")
def exchange() -> Exchange:
    return load_exchange("text_response")


@pytest.fixture
def plan(exchange: Exchange) -> SessionPlan:
    return SessionPlan.build(URL, exchange)


@pytest.fixture
def reads(exchange: Exchange) -> list[bytes]:
    """What a server sends, one read per turn: the 101 and the first turn's events, then
    each later turn's events."""
    turns = [b"".join(text(event) for event in events) for _, events in exchange.bare]
    return [UPGRADED + turns[0], *turns[1:]]


def client_payload(frame: bytes) -> bytes:
    _, second, payload = unmask(frame)
    assert second & 0x80, "a client frame must be masked"
    return payload


def played(plan: SessionPlan, reads: list[bytes]) -> LeanSession:
    """A session that has received every recorded event, and so sent its close."""
    session = LeanSession(plan)
    for data in reads:
        session.receive(data)
    return session


# -- the plan -------------------------------------------------------------------------


def test_the_plan_holds_every_event_and_the_frame_to_send_after_each(
    exchange: Exchange, plan: SessionPlan
) -> None:
    assert plan.first == b""
    assert [event.kind.decode() for event in plan.events] == [
        kind for _, kinds in exchange.turns for kind in kinds
    ]
    sends = [(event.turn, event.then) for event in plan.events if event.then]
    assert [turn for turn, _ in sends] == [0, 1, 2, 3]  # the last event of each turn
    client_frames = [client for client, _ in exchange.turns[1:]]
    assert [client_payload(then).decode() for _, then in sends[:3]] == client_frames
    assert client_payload(sends[3][1]) == close_payload(1000)
    assert plan.request.startswith(b"GET /v1/realtime?model=bench HTTP/1.1\r\nHost: 127.0.0.1:9")


def test_a_recording_that_starts_with_a_client_frame_sends_it_once_upgraded() -> None:
    exchange = Exchange([(None, []), ('{"type":"a"}', ["b"])], [])
    session = LeanSession(SessionPlan.build(URL, exchange))
    assert session.start().startswith(b"GET ")
    assert client_payload(session.receive(UPGRADED)) == b'{"type":"a"}'
    with pytest.raises(CausalityError, match="turn 1: 'b' arrived before the client frame"):
        LeanSession(SessionPlan.build(URL, exchange)).receive(UPGRADED + text('{"type":"b"}'))


@pytest.mark.parametrize("url", ["wss://127.0.0.1:9/v1/realtime", "ws://127.0.0.1/v1/realtime"])
def test_the_plan_needs_a_plain_url_with_a_port(url: str, exchange: Exchange) -> None:
    with pytest.raises(ValueError, match="needs ws://HOST:PORT"):
        SessionPlan.build(url, exchange)


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b'{"type":"response.done","response":{}}', b"response.done"),
        (b'{"event_id":"e","type":"error"}', b"error"),  # type not first: parsed
        (b'{"type":"a\\"b"}', b'a"b'),  # an escape: parsed
        (b'{"type": "spaced"}', b"spaced"),
        (b"not json", b"(not JSON)"),
        (b'["type"]', b"(no type)"),
        (b'{"type":1}', b"(no type)"),
    ],
)
def test_event_type(payload: bytes, kind: bytes) -> None:
    assert event_type(payload) == kind


# -- one session, bytes in and out ----------------------------------------------------


def test_a_whole_session_sends_each_frame_once_its_turn_is_answered(
    exchange: Exchange, plan: SessionPlan, reads: list[bytes]
) -> None:
    session = LeanSession(plan)
    sent = [session.receive(data) for data in reads]
    assert [client_payload(frame).decode() for frame in sent[:3]] == [
        client for client, _ in exchange.turns[1:]
    ]
    assert client_payload(sent[3]) == close_payload(1000)
    assert session.phase is Phase.CLOSING
    assert session.outcome() == "after the last event: the connection ended while closing"
    assert session.receive(CLOSE_1000) == b""
    assert session.phase is Phase.CLOSED
    assert session.outcome() is None


def test_bytes_cut_anywhere_play_the_same(plan: SessionPlan, reads: list[bytes]) -> None:
    session = LeanSession(plan)
    sent = b""
    for data in reads:
        for index in range(0, len(data), 7):
            sent += session.receive(data[index : index + 7])
    session.receive(CLOSE_1000)
    assert session.outcome() is None
    whole = LeanSession(plan)
    assert sent == b"".join(whole.receive(data) for data in reads)


def test_events_that_arrived_before_their_client_frame_was_sent_break_causality(
    plan: SessionPlan, reads: list[bytes]
) -> None:
    with pytest.raises(
        CausalityError,
        match=SENT_AHEAD,
    ):
        LeanSession(plan).receive(reads[0] + reads[1])


def test_even_the_first_bytes_of_an_event_sent_ahead_break_causality(
    plan: SessionPlan, reads: list[bytes]
) -> None:
    session = LeanSession(plan)
    assert session.receive(reads[0] + reads[1][:3])  # the client frame, sent at once
    with pytest.raises(CausalityError, match=re.escape("turn 1: 'session.updated' arrived before")):
        session.receive(reads[1][3:])


def test_an_unexpected_event_type_breaks_the_order(plan: SessionPlan, reads: list[bytes]) -> None:
    session = LeanSession(plan)
    session.receive(reads[0])
    session.receive(reads[1])
    with pytest.raises(
        CausalityError,
        match=re.escape("turn 2: expected 'conversation.item.added', got 'session.updated'"),
    ):
        session.receive(reads[1])


def test_an_event_after_the_last_recorded_one_breaks_the_order(
    plan: SessionPlan, reads: list[bytes]
) -> None:
    session = played(plan, reads)
    with pytest.raises(CausalityError, match="'extra' arrived after the last recorded event"):
        session.receive(text('{"type":"extra"}'))


def test_a_binary_frame_breaks_the_order(plan: SessionPlan, reads: list[bytes]) -> None:
    session = LeanSession(plan)
    awaiting = re.escape("turn 1, awaiting 'session.updated': a binary frame")
    with pytest.raises(CausalityError, match=awaiting):
        session.receive(reads[0] + server_frame(BINARY, b"\x00"))


def test_a_server_close_is_answered_and_reported(plan: SessionPlan, reads: list[bytes]) -> None:
    session = LeanSession(plan)
    session.receive(reads[0])
    answer = session.receive(server_frame(CLOSE, close_payload(4000, "bye")))
    assert client_payload(answer) == (4000).to_bytes(2, "big")
    assert session.phase is Phase.CLOSED
    assert session.outcome() == (
        "turn 1, awaiting 'session.updated': the server closed (4000 'bye')"
    )
    with pytest.raises(ProtocolError, match="a frame after the close frame"):
        session.receive(reads[1])


def test_a_close_answered_with_another_code_fails_the_session(
    plan: SessionPlan, reads: list[bytes]
) -> None:
    session = played(plan, reads)
    session.receive(server_frame(CLOSE, close_payload(1011)))
    assert session.outcome() == "the server answered the close 1000 with 1011 ''"


def test_a_ping_gets_its_pong_while_the_session_is_open(
    plan: SessionPlan, reads: list[bytes]
) -> None:
    session = LeanSession(plan)
    first, second, payload = unmask(session.receive(UPGRADED + server_frame(PING, b"p1")))
    assert (first, second & 0x7F, payload) == (0x8A, 2, b"p1")
    assert session.receive(reads[0].removeprefix(UPGRADED))  # session.update
    for data in reads[1:]:
        session.receive(data)
    assert session.receive(server_frame(PING, b"p2")) == b""  # closing: no pong


def test_a_connection_lost_midway_is_reported(plan: SessionPlan, reads: list[bytes]) -> None:
    session = LeanSession(plan)
    session.receive(reads[0])
    assert session.outcome() == (
        "turn 1, awaiting 'session.updated': the connection ended while open"
    )


def test_a_refused_upgrade_is_a_handshake_error(plan: SessionPlan) -> None:
    session = LeanSession(plan)
    assert session.receive(b"HTTP/1.1 401 Unauthorized\r\n") == b""
    with pytest.raises(HandshakeError, match=re.escape("got 'HTTP/1.1 401 Unauthorized'")):
        session.receive(b"Content-Length: 0\r\n\r\n")


# -- whole sessions over sockets ------------------------------------------------------


@pytest.mark.asyncio
async def test_sessions_against_fakeupstream_play_everything_and_close_1000(
    exchange: Exchange,
) -> None:
    async with FakeUpstream(cassette="text_response") as fake:
        async with asyncio.timeout(TIMEOUT):
            durations = await run_sessions(f"{fake.url}/v1/realtime?model=bench", exchange, 5)
            await fake.wait_idle()
        reports = fake.reports()
    assert len(durations) == 5
    assert all(duration > 0 for duration in durations)
    assert [(r.played, r.total, r.mismatches) for r in reports] == [(22, 22, [])] * 5
    assert {(r.closed_by, r.close_code) for r in reports} == {("client", 1000)}


@pytest.mark.asyncio
async def test_sessions_against_the_bare_anchor(exchange: Exchange, tmp_path: Path) -> None:
    turns = write_bare_exchange(exchange, tmp_path / "turns.json")
    argv = bare_argv("exchange", str(turns))
    async with server_process("bare", argv, tmp_path / "bare.log") as bare:
        async with asyncio.timeout(TIMEOUT):
            durations = await run_sessions(f"{bare.url}/v1/realtime?model=bench", exchange, 5)
    assert len(durations) == 5


@pytest.fixture
def ahead(tmp_path: Path) -> Path:
    """``text_response`` with its client frames taken out: the server sends every event
    at once, each turn ahead of the client frame it answers."""
    document = yaml.safe_load((bundled_cassette_dir() / "text_response.yaml").read_text())
    document["timeline"] = [step for step in document["timeline"] if "client" not in step]
    (tmp_path / "ahead.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return tmp_path


@pytest.mark.asyncio
async def test_a_server_that_sends_ahead_is_caught(exchange: Exchange, ahead: Path) -> None:
    async with FakeUpstream(ahead, cassette="ahead") as fake:
        with pytest.raises(
            CausalityError,
            match=SENT_AHEAD,
        ):
            async with asyncio.timeout(TIMEOUT):
                await run_sessions(f"{fake.url}/v1/realtime?model=bench", exchange, 1)


@pytest.mark.asyncio
async def test_a_server_that_repeats_an_event_is_caught(exchange: Exchange) -> None:
    async with FakeUpstream(cassette="text_response") as fake:
        fake.fault("duplicate", after=2)  # conversation.item.added, twice
        with pytest.raises(
            CausalityError,
            match=re.escape("expected 'conversation.item.done', got 'conversation.item.added'"),
        ):
            async with asyncio.timeout(TIMEOUT):
                await run_sessions(f"{fake.url}/v1/realtime?model=bench", exchange, 1)


@pytest.mark.asyncio
async def test_fragmented_events_dripped_over_many_reads_play(exchange: Exchange) -> None:
    rate = 4_000  # 200-byte fragments, one per 50 ms
    response_done = exchange.bare[-1][1][-2]
    assert json.loads(response_done)["type"] == "response.done"
    assert len(response_done) > 4 * 200  # five fragments at least
    async with FakeUpstream(cassette="text_response") as fake:
        fake.fault("drip", after=17, rate=rate)  # response.done and the last event
        async with asyncio.timeout(TIMEOUT):
            await run_sessions(f"{fake.url}/v1/realtime?model=bench", exchange, 1)
            await fake.wait_idle()
        [report] = fake.reports()
    assert [(fired.fault["kind"], fired.frames) for fired in report.faults] == [("drip", 17)]
    assert (report.closed_by, report.close_code) == ("client", 1000)


@pytest.mark.asyncio
async def test_a_server_that_closes_early_gets_its_close_answered(exchange: Exchange) -> None:
    async with FakeUpstream(cassette="text_response") as fake:
        fake.fault("close", after=1, code=4000, reason="going")
        with pytest.raises(RuntimeError, match=re.escape("the server closed (4000 'going')")):
            async with asyncio.timeout(TIMEOUT):
                await run_sessions(f"{fake.url}/v1/realtime?model=bench", exchange, 1)
        async with asyncio.timeout(TIMEOUT):
            await fake.wait_idle()
        [report] = fake.reports()
    assert (report.closed_by, report.close_code) == ("server", 4000)
    assert report.protocol_errors == []


@pytest.mark.asyncio
async def test_a_refused_upgrade_fails_the_batch(exchange: Exchange) -> None:
    async with FakeUpstream(cassette="text_response") as fake:
        fake.fault("refuse", status=503)
        with pytest.raises(HandshakeError, match=re.escape("expected HTTP 101, got 'HTTP/1.1 503")):
            async with asyncio.timeout(TIMEOUT):
                await run_sessions(f"{fake.url}/v1/realtime?model=bench", exchange, 1)


def test_the_exchange_file_of_the_bare_anchor_is_what_the_plan_expects(
    exchange: Exchange, tmp_path: Path
) -> None:
    turns = json.loads(write_bare_exchange(exchange, tmp_path / "turns.json").read_text())
    kinds = [json.loads(frame)["type"] for _, frames in turns for frame in frames]
    assert [event.kind.decode() for event in SessionPlan.build(URL, exchange).events] == kinds
