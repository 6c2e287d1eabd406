"""The REST side on a real socket: the official SDK's models and client_secrets, bodies, 404s."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from openai import AsyncOpenAI, DefaultAsyncHttpxClient, NotFoundError, RateLimitError

from fakeupstream import FakeUpstream
from fakeupstream.rest import cassette_models
from fakeupstream.storage.library import CassetteLibrary

from ..helpers import TIMEOUT, recv_event, recv_until_closed, ws_connect

pytestmark = pytest.mark.asyncio
SESSION = {"type": "realtime", "model": "gpt-realtime", "instructions": "Talk like a pirate."}


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(cassette="text_response") as server:
        yield server


async def raw(fake: FakeUpstream, data: bytes) -> tuple[int, dict[str, Any]]:
    host, port = fake.http_url.removeprefix("http://").rsplit(":", 1)
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(data)
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


async def test_the_sdk_lists_gpt_realtime_and_every_bundled_model(fake: FakeUpstream) -> None:
    library = CassetteLibrary()
    bundled = set().union(*(cassette_models(library.load(n)) for n in library.names()))
    client = AsyncOpenAI(api_key="sk-test", base_url=f"{fake.http_url}/v1", max_retries=0)
    listed = {model.id for model in (await client.models.list()).data}
    assert listed == {"gpt-realtime", *bundled}
    assert (await client.models.retrieve("gpt-realtime")).id == "gpt-realtime"
    with pytest.raises(NotFoundError, match="does not exist"):
        await client.models.retrieve("gpt-nope")
    await client.close()


async def test_an_sdk_client_secret_opens_a_session_with_its_instructions(
    fake: FakeUpstream,
) -> None:
    backend = AsyncOpenAI(api_key="sk-test", base_url=f"{fake.http_url}/v1", max_retries=0)
    secret = await backend.realtime.client_secrets.create(session=SESSION)
    assert secret.value.startswith("ek_") and len(secret.value) == 35
    assert secret.session.type == "realtime"
    assert secret.session.instructions == SESSION["instructions"]
    app = AsyncOpenAI(api_key=secret.value, base_url=f"{fake.http_url}/v1", max_retries=0)
    async with app.realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        assert created.session.instructions == SESSION["instructions"]
    await backend.close()
    await app.close()
    # A browser presents the key as a subprotocol, and need not name the model.
    async with ws_connect(
        f"{fake.url}/v1/realtime",
        {},
        subprotocols=["realtime", f"openai-insecure-api-key.{secret.value}"],
    ) as ws:
        event = await recv_event(ws)
    assert event["session"]["instructions"] == SESSION["instructions"]


async def test_an_unknown_ephemeral_key_gets_the_live_answer(fake: FakeUpstream) -> None:
    headers = {"Authorization": "Bearer ek_" + "0" * 32}
    async with ws_connect(f"{fake.url}/v1/realtime?model=gpt-realtime", headers) as ws:
        events, code, reason = await recv_until_closed(ws)
    assert [e["error"]["code"] for e in events] == ["invalid_api_key"]
    assert (code, reason) == (3000, "invalid_request_error.invalid_api_key")


async def test_the_sdk_over_https_with_the_local_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    async with FakeUpstream(cassette="text_response", tls=True) as fake:
        assert fake.ca_certificate is not None
        context = ssl.create_default_context(cafile=str(fake.ca_certificate))
        client = AsyncOpenAI(
            api_key="sk-test",
            base_url=f"{fake.http_url}/v1",
            max_retries=0,
            http_client=DefaultAsyncHttpxClient(verify=context),
        )
        secret = await client.realtime.client_secrets.create(session=SESSION)
        app = AsyncOpenAI(api_key=secret.value, base_url=f"{fake.http_url}/v1", max_retries=0)
        async with app.realtime.connect(
            model="gpt-realtime", websocket_connection_options={"ssl": context}
        ) as conn:
            created = await conn.recv()
            assert created.session.instructions == SESSION["instructions"]
        await client.close()
        await app.close()


async def test_a_chunked_body_is_read(fake: FakeUpstream) -> None:
    body = json.dumps({"session": SESSION}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]))
    status, answer = await raw(
        fake,
        b"POST /v1/realtime/client_secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n",
    )
    assert status == 200
    assert answer["session"]["instructions"] == SESSION["instructions"]


async def test_a_body_over_the_limit_gets_413_at_once(fake: FakeUpstream) -> None:
    status, answer = await raw(
        fake,
        b"POST /v1/realtime/client_secrets HTTP/1.1\r\nAuthorization: Bearer k\r\n"
        b"Content-Length: 999999999999\r\n\r\n",
    )
    assert status == 413
    assert answer["error"]["code"] == "request_too_large"


async def test_unknown_paths_get_a_quiet_404_and_one_log_line(
    fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fakeupstream.front_door")
    status, answer = await raw(fake, b"POST /loads HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
    assert status == 404
    assert answer["error"]["code"] == "not_found"
    status, _ = await raw(fake, b"GET /loads?api_key=sk-secret HTTP/1.1\r\n\r\n")
    assert status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "fakeupstream.front_door"]
    assert lines[0] == "no route for POST /loads: 404"
    assert lines[1].startswith("no route for GET /loads?api_key=")
    assert "sk-secret" not in lines[1]
    assert fake.errors == []


OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
)


async def test_an_sdk_call_then_its_sideband_socket(fake: FakeUpstream) -> None:
    client = AsyncOpenAI(api_key="sk-test", base_url=f"{fake.http_url}/v1", max_retries=0)
    created = await client.realtime.calls.with_raw_response.create(sdp=OFFER, session=SESSION)
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/sdp"
    assert created.text.startswith("v=0\r\n")
    call_id = created.headers["location"].rsplit("/", 1)[1]
    assert call_id.startswith("rtc_")
    async with client.realtime.connect(call_id=call_id) as conn:
        event = await conn.recv()
        assert event.type == "session.created"
        assert event.session.instructions == SESSION["instructions"]
    await client.realtime.calls.hangup(call_id)
    with pytest.raises(NotFoundError):
        await client.realtime.calls.hangup(call_id)
    await client.close()


async def test_the_legacy_sessions_endpoint_mints_a_key_too(fake: FakeUpstream) -> None:
    body = json.dumps({"model": "gpt-realtime", "instructions": "Talk like a pirate."}).encode()
    status, session = await raw(
        fake,
        b"POST /v1/realtime/sessions HTTP/1.1\r\nAuthorization: Bearer k\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    assert status == 200
    key = session["client_secret"]["value"]
    async with ws_connect(
        f"{fake.url}/v1/realtime?model=gpt-realtime", {"Authorization": f"Bearer {key}"}
    ) as ws:
        event = await recv_event(ws)
    assert event["session"]["instructions"] == "Talk like a pirate."


async def test_a_large_body_in_many_reads_is_read_whole(fake: FakeUpstream) -> None:
    instructions = "Arr! " * 200_000  # a megabyte of session config
    body = json.dumps({"session": {"type": "realtime", "instructions": instructions}}).encode()
    head = (
        b"POST /v1/realtime/client_secrets HTTP/1.1\r\nAuthorization: Bearer k\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    host, port = fake.http_url.removeprefix("http://").rsplit(":", 1)
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(head)
        for start in range(0, len(body), 16 * 1024):
            writer.write(body[start : start + 16 * 1024])
            await writer.drain()
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
    status_line, _, payload = answer.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 200 ")
    assert json.loads(payload)["session"]["instructions"] == instructions


RECORDED = """\
version: 1
recorded: {at: "2026-01-01T00:00:00Z"}
http:
  - request: {method: POST, path: /v1/realtime/client_secrets}
    response:
      status: 200
      headers: {content-type: application/json}
      body:
        value: ek_REDACTED
        expires_at: 1767226200
        session: {type: realtime, object: realtime.session, id: sess_REC, instructions: Recorded.}
  - request: {method: POST, path: /v1/realtime/client_secrets}
    response:
      status: 429
      body: {error: {type: requests, code: rate_limit_exceeded, message: Slow down., param: null}}
timeline:
  - server: {type: session.created, event_id: e1, session: {type: realtime, id: sess_REC}}
"""


async def test_recorded_client_secrets_answer_in_order_each_with_a_fresh_key(
    tmp_path: Path,
) -> None:
    (tmp_path / "minted.yaml").write_text(RECORDED)
    async with FakeUpstream(tmp_path) as fake:
        base = f"{fake.cassette_url('minted')}/v1"
        backend = AsyncOpenAI(api_key="sk-test", base_url=base, max_retries=0)
        secret = await backend.realtime.client_secrets.create(session=SESSION)
        assert secret.value.startswith("ek_") and secret.value != "ek_REDACTED"
        assert secret.session.instructions == "Recorded."  # the recorded answer
        # Recorded 600 s after `recorded.at`: it expires 600 s from now.
        assert abs(secret.expires_at - (time.time() + 600)) < 5
        for _ in range(2):  # the second recorded answer, then it again
            with pytest.raises(RateLimitError, match=r"Slow down\."):
                await backend.realtime.client_secrets.create(session=SESSION)
        fake.reset()
        again = await backend.realtime.client_secrets.create(session=SESSION)
        assert again.value not in ("ek_REDACTED", secret.value)
        await backend.close()
        # The fresh key opens a session from the config the client asked for.
        async with ws_connect(
            f"{fake.url}/cassettes/minted/v1/realtime",
            {"Authorization": f"Bearer {secret.value}"},
        ) as ws:
            created = await recv_event(ws)
    assert created["session"]["instructions"] == SESSION["instructions"]
