"""Browsers are refused unless allowed; the recorder relays only its own clients."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from fakeupstream import AccessPolicy, FakeUpstream, RecordingConfig, RecordMode
from fakeupstream.report import Outcome

from ..helpers import AUTH, TIMEOUT, recv_event, ws_connect

SESSION = "/cassettes/session/v1/realtime?model=gpt-realtime"


async def raw(port: int, head: bytes) -> tuple[int, dict[str, object]]:
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        data = await reader.read()
        writer.close()
        await writer.wait_closed()
    top, _, body = data.partition(b"\r\n\r\n")
    return int(top.split(b" ", 2)[1]), json.loads(body)


async def refused_status(url: str, headers: dict[str, str]) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(url, headers):
            pass
    response = info.value.response
    return response.status_code, json.loads(response.body)["error"]["code"]


@pytest.mark.asyncio
async def test_a_foreign_origin_is_refused_and_reported() -> None:
    async with FakeUpstream() as fake:
        url = fake.url + SESSION
        assert await refused_status(url, {**AUTH, "Origin": "https://evil.example"}) == (
            403,
            "origin_not_allowed",
        )
        async with ws_connect(url, {**AUTH, "Origin": "http://localhost:5173"}) as ws:
            assert (await recv_event(ws))["type"] == "session.created"
        refused, played = fake.reports()
    assert (refused.outcome, refused.close_reason) == (Outcome.REFUSED, "origin not allowed")
    assert played.outcome is Outcome.REPLAYED


@pytest.mark.asyncio
async def test_an_allowed_origin_connects() -> None:
    access = AccessPolicy(allow_origins=("https://app.example",))
    async with FakeUpstream(access=access) as fake:
        headers = {**AUTH, "Origin": "https://app.example"}
        async with ws_connect(fake.url + SESSION, headers) as ws:
            assert (await recv_event(ws))["type"] == "session.created"


@pytest.mark.asyncio
async def test_the_admin_api_refuses_foreign_origins_and_hosts() -> None:
    async with FakeUpstream() as fake:
        host = f"127.0.0.1:{fake.port}".encode()
        cross = (
            b"POST /__fakeupstream/cassette?name=session HTTP/1.1\r\nHost: " + host + b"\r\n"
            b"Origin: https://evil.example\r\nContent-Length: 0\r\n\r\n"
        )
        status, body = await raw(fake.port, cross)
        assert (status, body["error"]["code"]) == (403, "origin_not_allowed")  # type: ignore[index]
        rebound = b"GET /__fakeupstream/report HTTP/1.1\r\nHost: evil.example:80\r\n\r\n"
        status, body = await raw(fake.port, rebound)
        assert (status, body["error"]["code"]) == (403, "host_not_allowed")  # type: ignore[index]
        assert fake.current_cassette() is None
        own = b"GET /__fakeupstream/health HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
        assert (await raw(fake.port, own))[0] == 200
        reasons = [report.close_reason for report in fake.reports()]
    assert reasons == ["admin request not allowed", "admin request not allowed"]


@pytest.mark.asyncio
async def test_a_non_ascii_request_line_is_a_400() -> None:
    async with FakeUpstream() as fake:
        head = b"GET /v1/realtime?model=\xff HTTP/1.1\r\nHost: x\r\n\r\n"
        status, body = await raw(fake.port, head)
    assert (status, body["error"]["code"]) == (400, "invalid_request_target")  # type: ignore[index]


@pytest.mark.asyncio
async def test_the_recorder_relays_only_clients_with_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-SENTINEL0123456789abcdefXYZ")
    async with FakeUpstream(cassette="session") as real:
        config = RecordingConfig.from_env(RecordMode.ALL, upstream=real.http_url)
        access = AccessPolicy(client_token="t0ken-for-my-tests")
        async with FakeUpstream(tmp_path, recording=config, access=access) as recorder:
            url = f"{recorder.url}/cassettes/mine/v1/realtime?model=gpt-realtime"
            assert await refused_status(url, {}) == (403, "client_token_required")
            assert await refused_status(url, {"X-FakeUpstream-Token": "guess"}) == (
                403,
                "client_token_required",
            )
            assert real.reports() == []  # nothing reached the upstream
            async with ws_connect(url + "&fakeupstream_token=t0ken-for-my-tests", {}) as ws:
                assert (await recv_event(ws))["type"] == "session.created"
            async with asyncio.timeout(TIMEOUT):
                await recorder.wait_idle()
            outcomes = [report.outcome for report in recorder.reports()]
            [relayed] = real.reports()
    assert outcomes[:2] == [Outcome.REFUSED, Outcome.REFUSED]
    assert "t0ken" not in relayed.path
    assert "t0ken" not in (tmp_path / "mine.yaml").read_text()
