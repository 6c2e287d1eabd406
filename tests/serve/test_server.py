"""The fake upstream over real sockets: handshake rules, GA emulation, admin API."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import websockets.version
from freezegun import freeze_time
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidStatus

from fakeupstream import CassetteNotFound, FakeUpstream
from fakeupstream.replay import ReplayOptions
from fakeupstream.serve import server
from fakeupstream.serve.replay_loop import BATCH

from ..helpers import AUTH, TIMEOUT, http, recv_event, recv_until_closed, send_event, ws_connect

MODEL = "?model=gpt-realtime"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as server:
        yield server


def realtime(fake: FakeUpstream, cassette: str | None = None, query: str = MODEL) -> str:
    prefix = f"/cassettes/{cassette}" if cassette else ""
    return f"{fake.url}{prefix}/v1/realtime{query}"


@pytest.mark.asyncio
async def test_session_created_from_a_cassette_named_in_the_path(fake: FakeUpstream) -> None:
    async with ws_connect(realtime(fake, "session")) as ws:
        created = await recv_event(ws)
        assert created["type"] == "session.created"
        assert created["session"]["model"]
        await send_event(
            ws,
            {
                "type": "session.update",
                "session": {"type": "realtime", "output_modalities": ["text"]},
            },
        )
        updated = await recv_event(ws)
        assert updated["session"]["output_modalities"] == ["text"]
    await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
    [report] = fake.reports()
    assert report.outcome == "replayed"
    assert report.played == report.total
    assert report.failures() == []
    assert report.closed_by == "client"


@pytest.mark.asyncio
async def test_beta_header_gets_the_ga_error_and_close_4000(fake: FakeUpstream) -> None:
    async with ws_connect(
        realtime(fake, "beta_header_rejected"), {**AUTH, "OpenAI-Beta": "realtime=v1"}
    ) as ws:
        events, code, reason = await recv_until_closed(ws)
    assert [e["type"] for e in events] == ["error"]
    assert events[0]["event_id"]
    assert events[0]["error"] == {
        "type": "invalid_request_error",
        "code": "beta_api_shape_disabled",
        "message": "The Realtime Beta API is no longer supported. "
        "Please use /v1/realtime for the GA API.",
        "param": None,
        "event_id": None,
    }
    assert (code, reason) == (4000, "invalid_request_error.beta_api_shape_disabled")


@pytest.mark.asyncio
async def test_the_beta_cassette_without_the_header_is_a_normal_session(fake: FakeUpstream) -> None:
    async with ws_connect(realtime(fake, "beta_header_rejected")) as ws:
        assert (await recv_event(ws))["type"] == "session.created"


@pytest.mark.asyncio
async def test_no_authorization_gets_an_error_and_close_3000(fake: FakeUpstream) -> None:
    async with ws_connect(realtime(fake, "session"), {}) as ws:
        events, code, reason = await recv_until_closed(ws)
    assert events[0]["error"]["message"] == "Missing bearer or basic authentication in header"
    assert events[0]["error"]["code"] is None
    assert (code, reason) == (3000, "invalid_request_error")


@pytest.mark.asyncio
async def test_no_model_gets_missing_model_and_close_4000(fake: FakeUpstream) -> None:
    async with ws_connect(realtime(fake, "session", query="")) as ws:
        events, code, reason = await recv_until_closed(ws)
    assert events[0]["error"]["code"] == "missing_model"
    assert (code, reason) == (4000, "invalid_request_error.missing_model")


@pytest.mark.asyncio
async def test_bad_client_frames_get_ga_errors_and_the_session_goes_on(fake: FakeUpstream) -> None:
    async with ws_connect(realtime(fake, "session")) as ws:
        await recv_event(ws)
        await send_event(ws, {"type": "totally.bogus.event", "event_id": "evt_42"})
        error = await recv_event(ws)
        assert error["error"]["code"] == "invalid_value"
        assert error["error"]["param"] == "type"
        assert error["error"]["event_id"] == "evt_42"
        await ws.send("{not json")
        assert (await recv_event(ws))["error"]["code"] == "invalid_json"
        await ws.send(b"\x00\x01")
        assert (await recv_event(ws))["error"]["code"] == "invalid_event"
        await send_event(ws, {"type": "session.update", "session": {"type": "realtime"}})
        assert (await recv_event(ws))["type"] == "session.updated"


@pytest.mark.asyncio
async def test_an_unexpected_event_is_answered_and_reported(fake: FakeUpstream) -> None:
    async with ws_connect(realtime(fake, "session")) as ws:
        await recv_event(ws)
        await send_event(ws, {"type": "response.create"})
        error = await recv_event(ws)
        assert error["error"]["code"] == "unexpected_client_event"
    await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
    [report] = fake.reports()
    [mismatch] = report.mismatches
    assert mismatch.differences == ["type: expected 'session.update', got 'response.create'"]
    assert [u.summary for u in report.unplayed] == ["'session.update'", "'session.updated'"]


@pytest.mark.asyncio
async def test_unknown_cassette_is_refused_with_the_list_of_cassettes(fake: FakeUpstream) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(realtime(fake, "nope")):
            pass
    response = info.value.response
    assert response.status_code == 404
    assert b"no cassette named 'nope'" in response.body
    assert b"text_response" in response.body


@pytest.mark.asyncio
async def test_without_any_cassette_the_refusal_says_how_to_pick_one(fake: FakeUpstream) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(realtime(fake)):
            pass
    assert info.value.response.status_code == 404
    assert b"no cassette selected" in info.value.response.body


@pytest.mark.asyncio
async def test_other_paths_are_not_found(fake: FakeUpstream) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(f"{fake.url}/v1/chat{MODEL}"):
            pass
    assert info.value.response.status_code == 404


@pytest.mark.asyncio
async def test_admin_api(fake: FakeUpstream) -> None:
    base = fake.http_url
    assert await http(base, "GET", "/__fakeupstream/health") == (
        200,
        {"status": "ok", "cassette": None},
    )
    status, body = await http(base, "POST", "/__fakeupstream/cassette?name=nope")
    assert status == 404
    assert "session" in body["error"]["available"]
    assert await http(base, "POST", "/__fakeupstream/cassette?name=text_response") == (
        200,
        {"cassette": "text_response"},
    )
    async with ws_connect(realtime(fake)) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
    await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
    status, body = await http(base, "GET", "/__fakeupstream/report")
    assert status == 200
    [connection] = body["connections"]
    assert connection["cassette"] == "text_response"
    assert len(connection["unplayed"]) > 0
    status, body = await http(base, "GET", "/__fakeupstream/cassettes")
    assert {"name": "session", "description": fake.library.load("session").description} in (
        body["cassettes"]
    )
    assert await http(base, "POST", "/__fakeupstream/reset") == (200, {"status": "reset"})
    assert fake.reports() == []
    assert (await http(base, "POST", "/__fakeupstream/cassette"))[0] == 400
    assert (await http(base, "GET", "/__fakeupstream/cassette?name=session"))[0] == 405
    assert (await http(base, "GET", "/__fakeupstream/nothing"))[0] == 404
    assert (await http(base, "POST", "/v1/realtime", b"{}"))[0] == 405


@pytest.mark.asyncio
async def test_a_plain_http_request_is_refused_and_reported(fake: FakeUpstream) -> None:
    status, _ = await http(fake.http_url, "GET", "/cassettes/session/v1/realtime?model=m")
    assert status == 426
    await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
    [report] = fake.reports()
    assert report.outcome == "refused" and report.close_reason == "HTTP 426"
    assert report.request is not None
    assert report.request.path == "/cassettes/session/v1/realtime"


@pytest.mark.asyncio
async def test_an_oversized_request_head_is_refused(fake: FakeUpstream) -> None:
    host, port = fake.http_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000)
    raw = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    assert raw.startswith(b"HTTP/1.1 431")


@pytest.mark.asyncio
async def test_browser_style_auth_and_the_realtime_subprotocol(fake: FakeUpstream) -> None:
    async with ws_connect(
        realtime(fake, "session"), {}, subprotocols=["realtime", "openai-insecure-api-key.ek_test"]
    ) as ws:
        assert ws.subprotocol == "realtime"
        assert (await recv_event(ws))["type"] == "session.created"


@pytest.mark.asyncio
async def test_http_refusal_rules_and_malformed_cassettes(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text(
        "version: 1\nhandshake:\n  rules:\n"
        "    - when: {query: {model: gpt-nope}}\n"
        "      refuse: {status: 404, body: {error: {code: model_not_found}},"
        " headers: {X-Why: model}}\n"
        "timeline: []\n"
    )
    (tmp_path / "broken.yaml").write_text("version: 1\ntimeline:\n  - server: [\n")
    async with FakeUpstream(tmp_path) as fake:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(realtime(fake, "gateway", "?model=gpt-nope")):
                pass
        assert info.value.response.status_code == 404
        assert info.value.response.headers["X-Why"] == "model"
        assert b"model_not_found" in info.value.response.body
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(realtime(fake, "broken")):
                pass
        assert info.value.response.status_code == 500
        assert b"broken.yaml:4:1: invalid YAML" in info.value.response.body


@pytest.mark.asyncio
async def test_expiry_times_move_to_the_replay_date() -> None:
    with freeze_time("2027-03-01T12:00:00Z", real_asyncio=True):
        async with FakeUpstream() as fake, ws_connect(realtime(fake, "session")) as ws:
            created = await recv_event(ws)
    now = 1803902400  # 2027-03-01T12:00:00Z
    assert created["session"]["expires_at"] == now + 3600


@pytest.mark.asyncio
async def test_stopping_closes_connections_and_frees_the_port() -> None:
    fake = FakeUpstream(cassette="session")
    await fake.start()
    port = fake.port
    async with ws_connect(realtime(fake)) as ws:
        await recv_event(ws)
        await fake.stop()
        _, code, _ = await recv_until_closed(ws)
    assert code == 1001
    [report] = fake.reports()
    assert report.finished
    with socket.socket() as probe:
        # As asyncio does for servers: connections the server closed sit in TIME_WAIT.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))  # raises if the port were still held


def test_a_bad_default_cassette_fails_at_construction() -> None:
    with pytest.raises(CassetteNotFound, match="available: audio_roundtrip"):
        FakeUpstream(cassette="nope")
    with pytest.raises(ValueError, match="speed"):
        FakeUpstream(replay=ReplayOptions(speed=-1))


@pytest.mark.asyncio
async def test_connections_replay_the_episodes_in_order_then_the_last_again(tmp_path: Path) -> None:
    (tmp_path / "reconnect.yaml").write_text(
        "version: 1\nconnections:\n"
        "  - timeline:\n      - server: {type: error, n: 1}\n"
        "      - close: {code: 1011, reason: dropped}\n"
        "  - timeline:\n      - server: {type: session.created, n: 2}\n"
    )
    async with FakeUpstream(tmp_path, "reconnect") as fake:
        async with ws_connect(realtime(fake)) as ws:
            events, code, _ = await recv_until_closed(ws)
        assert (events[0]["n"], code) == (1, 1011)
        for _ in range(2):
            async with ws_connect(realtime(fake)) as ws:
                assert (await recv_event(ws))["n"] == 2
        await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
        assert [r.episode for r in fake.reports()] == [0, 1, 1]
        fake.reset()
        async with ws_connect(realtime(fake)) as ws:
            assert (await recv_event(ws))["n"] == 1


@pytest.mark.asyncio
async def test_a_connection_lost_right_after_the_upgrade_does_not_leave_the_server_busy(
    fake: FakeUpstream,
) -> None:
    # Send the upgrade, see the 101, and vanish: the handler may or may not get to run.
    host, port = fake.http_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /cassettes/session/v1/realtime?model=m HTTP/1.1\r\nHost: x\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer k\r\n\r\n"
    )
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), TIMEOUT)).startswith(b"HTTP/1.1 101")
    writer.transport.abort()
    await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
    [report] = fake.reports()
    assert report.finished


@pytest.mark.asyncio
async def test_a_cassette_in_a_subdirectory_by_path_prefix_and_admin_api(tmp_path: Path) -> None:
    (tmp_path / "test_chat").mkdir()
    (tmp_path / "test_chat" / "test_reply.yaml").write_text(
        "version: 1\ntimeline:\n"
        "  - server: {type: session.created, event_id: nested, session: {}}\n"
    )
    async with FakeUpstream(tmp_path) as fake:
        base = fake.cassette_url("test_chat/test_reply").replace("http", "ws")
        async with ws_connect(f"{base}/v1/realtime?model=m") as ws:
            assert (await recv_event(ws))["event_id"] == "nested"
        status, _ = await http(
            fake.http_url, "POST", "/__fakeupstream/cassette?name=test_chat/test_reply"
        )
        assert status == 200
        async with ws_connect(f"{fake.url}/v1/realtime?model=m") as ws:
            assert (await recv_event(ws))["event_id"] == "nested"
        status, body = await http(
            fake.http_url, "POST", "/__fakeupstream/cassette?name=test_chat/../x"
        )
        assert status == 404
        assert body["error"]["available"] == ["test_chat/test_reply"]
        with pytest.raises(CassetteNotFound):
            fake.cassette_url("/etc/passwd")


@pytest.mark.asyncio
async def test_the_beta_header_is_rejected_on_every_cassette_like_the_ga_api(
    fake: FakeUpstream,
) -> None:
    async with ws_connect(
        realtime(fake, "text_response"), {**AUTH, "OpenAI-Beta": "realtime=v1"}
    ) as ws:
        events, code, reason = await recv_until_closed(ws)
    assert [event["error"]["code"] for event in events] == ["beta_api_shape_disabled"]
    assert (code, reason) == (4000, "invalid_request_error.beta_api_shape_disabled")
    await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
    [report] = fake.reports()
    assert report.outcome == "answered"
    assert report.answered_by == "GA emulation: OpenAI-Beta header"


@pytest.mark.asyncio
async def test_the_report_shows_the_upgrade_request_a_client_sent(fake: FakeUpstream) -> None:
    async with ws_connect(realtime(fake, "session"), {**AUTH, "X-Trace": "t-1"}) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
    await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
    status, body = await http(fake.http_url, "GET", "/__fakeupstream/report")
    assert status == 200
    [connection] = body["connections"]
    request = connection["request"]
    assert request["path"] == "/cassettes/session/v1/realtime"
    assert request["query"] == [["model", "gpt-realtime"]]
    headers = {name.lower(): value for name, value in request["headers"]}
    assert headers["authorization"] == "REDACTED"
    assert headers["x-trace"] == "t-1"
    assert "openai-beta" not in headers
    assert AUTH["Authorization"].split()[1] not in str(body)


@pytest.mark.asyncio
async def test_a_stream_longer_than_a_batch_arrives_whole_in_order(tmp_path: Path) -> None:
    count = 2 * BATCH + 7
    deltas = "".join(
        f"  - server: {{type: response.output_text.delta, n: {n}}}\n" for n in range(count)
    )
    (tmp_path / "long.yaml").write_text(
        "version: 1\ntimeline:\n  - server: {type: session.created, session: {}}\n"
        f"{deltas}  - close: {{code: 1000, reason: done}}\n"
    )
    async with FakeUpstream(tmp_path, "long") as fake:
        async with ws_connect(f"{fake.url}/v1/realtime?model=m") as ws:
            events, code, _ = await recv_until_closed(ws)
        assert [event.get("n") for event in events[1:]] == list(range(count))
        assert code == 1000
        await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
        [report] = fake.reports()
        assert (report.played, report.total) == (count + 2, count + 2)


@pytest.mark.skipif(
    int(websockets.version.version.split(".")[0]) < 17,
    reason="websockets 14-16 leave each connection in reference cycles of their own",
)
@pytest.mark.asyncio
async def test_a_finished_connection_is_freed_without_the_garbage_collector(
    fake: FakeUpstream,
) -> None:
    # A reference cycle through each connection (websockets binds a select_subprotocol
    # callback to it) would leave ~60 objects per connection to the collector.
    def alive() -> int:
        return sum(issubclass(type(o), ServerConnection) for o in gc.get_objects())

    gc.collect()
    gc.disable()
    try:
        before = alive()  # another test's server may have some
        for offered in (None, ["realtime"]):
            async with ws_connect(realtime(fake, "session"), subprotocols=offered) as ws:
                await recv_event(ws)
                assert ws.subprotocol == (offered[0] if offered else None)
        await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
        for _ in range(100):  # the closing callbacks may still have to run
            if alive() <= before:
                break
            await asyncio.sleep(0.01)
        assert alive() <= before
    finally:
        gc.enable()


@pytest.mark.asyncio
async def test_a_bug_in_an_admin_answer_is_a_500_and_is_kept_for_the_test(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(server, "handle_admin", broken)
    status, body = await http(fake.http_url, "GET", "/__fakeupstream/health")
    assert status == 500 and body["error"]["code"] == "internal_error"
    assert "boom" in body["error"]["message"]
    [error] = fake.errors
    assert str(error) == "boom"
    fake.errors.clear()  # the fixture's server goes on
