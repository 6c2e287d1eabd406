"""The gateway forwards client_secrets and calls upstream: rules as data, then real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from websockets.datastructures import Headers

from fakeupstream import FakeUpstream
from proxy import Gateway, ProxyConfig, build_upstream_target
from proxy.handshake import SessionRequest, check_request
from proxy.rest_forward import ForwardRequest, build_forward, forwarded_path, parse_forward

ROOT = Path(__file__).resolve().parents[2]
SESSION = {"type": "realtime", "model": "gpt-realtime", "instructions": "Talk like a pirate."}


@pytest.mark.parametrize(
    ("method", "path", "forwarded"),
    [
        ("POST", "/v1/realtime/client_secrets", True),
        ("POST", "/v1/realtime/translations/client_secrets", True),
        ("POST", "/v1/realtime/calls", True),
        ("POST", "/v1/realtime/calls/rtc_abc123/hangup", True),
        ("POST", "/v1/realtime/calls/rtc_abc123/steal", False),
        ("GET", "/v1/realtime/client_secrets", False),
        ("GET", "/v1/realtime", False),
        ("POST", "/v1/chat/completions", False),
    ],
)
def test_which_routes_are_forwarded(method: str, path: str, forwarded: bool) -> None:
    assert forwarded_path(method, path) is forwarded


def status_of(response: object) -> int:
    assert isinstance(response, bytes)
    return int(response.split(b" ", 2)[1])


def test_a_forwarded_head_is_parsed_and_bad_bodies_refused() -> None:
    head = b"POST /v1/realtime/client_secrets HTTP/1.1\r\nContent-Length: 12\r\nX-A: b"
    assert parse_forward(head) == (
        "POST",
        "/v1/realtime/client_secrets",
        [("Content-Length", "12"), ("X-A", "b")],
        12,
    )
    assert parse_forward(b"GET /v1/realtime?model=m HTTP/1.1\r\nHost: h") is None
    base = b"POST /v1/realtime/calls HTTP/1.1\r\n"
    assert status_of(parse_forward(base + b"Transfer-Encoding: chunked")) == 411
    assert status_of(parse_forward(base + b"Content-Length: x")) == 400
    assert status_of(parse_forward(base + b"Content-Length: 999999999999")) == 413


def test_the_upstream_request_carries_the_key_and_nothing_vendor_specific() -> None:
    config = ProxyConfig(
        upstream="https://api.example:8443/cassettes/x?tenant=t",
        upstream_headers=(("X-Team", "rt"),),
    )
    headers = [
        ("Authorization", "Bearer sk-client"),
        ("Content-Type", "application/json"),
        ("OpenAI-Beta", "realtime=v1"),
        ("Cookie", "c=1"),
    ]
    built = build_forward(config, "POST", "/v1/realtime/client_secrets", headers, b"{}", {})
    assert isinstance(built, ForwardRequest)
    assert (built.host, built.port, built.tls) == ("api.example", 8443, True)
    head, _, body = built.data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /cassettes/x/v1/realtime/client_secrets?tenant=t HTTP/1.1"
    assert lines[1:] == [
        "Host: api.example:8443",
        "Authorization: Bearer sk-client",
        "Content-Type: application/json",
        "X-Team: rt",
        "Content-Length: 2",
        "Connection: close",
    ]
    assert body == b"{}"
    assert "sk-client" not in repr(built)


def test_the_fallback_key_or_401() -> None:
    config = ProxyConfig(upstream="http://h", api_key_env="KEY")
    built = build_forward(config, "POST", "/v1/realtime/calls", [], b"", {"KEY": "sk-env"})
    assert isinstance(built, ForwardRequest) and b"Authorization: Bearer sk-env\r\n" in built.data
    assert (built.port, built.tls) == (80, False)
    assert status_of(build_forward(config, "POST", "/v1/realtime/calls", [], b"", {})) == 401


async def mint_then_connect(base_url: str) -> tuple[str, str]:
    backend = AsyncOpenAI(api_key="sk-test", base_url=base_url, max_retries=0)
    secret = await backend.realtime.client_secrets.create(session=SESSION)
    app = AsyncOpenAI(api_key=secret.value, base_url=base_url, max_retries=0)
    async with app.realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
    await backend.close()
    await app.close()
    assert created.type == "session.created"
    return secret.value, created.session.instructions


@pytest.mark.asyncio
async def test_an_sdk_client_secret_through_the_gateway(fake: FakeUpstream) -> None:
    async with Gateway(ProxyConfig(upstream=fake.http_url)) as gateway:
        base = gateway.url.replace("ws://", "http://", 1) + "/v1"
        value, instructions = await mint_then_connect(base)
    assert value.startswith("ek_")
    assert instructions == SESSION["instructions"]


@pytest.mark.asyncio
async def test_python_dash_m_proxy_forwards_client_secrets(
    fake: FakeUpstream, time_limit: float
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxy",
        "--port",
        "0",
        "--upstream",
        fake.http_url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(time_limit * 2):
            url = (await process.stdout.readline()).decode().split()[-1]
        _, instructions = await mint_then_connect(url.replace("ws://", "http://", 1) + "/v1")
        assert instructions == SESSION["instructions"]
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), time_limit * 2)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert b"forwarded POST /v1/realtime/client_secrets: HTTP 200" in err
    assert b"Traceback" not in err


@pytest.mark.asyncio
async def test_an_unreachable_upstream_gets_502(time_limit: float) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    async with Gateway(ProxyConfig(upstream=f"http://127.0.0.1:{port}")) as gateway:
        host, gw_port = gateway.url.removeprefix("ws://").rsplit(":", 1)
        async with asyncio.timeout(time_limit):
            reader, writer = await asyncio.open_connection(host, int(gw_port))
            writer.write(
                b"POST /v1/realtime/client_secrets HTTP/1.1\r\nAuthorization: Bearer k\r\n"
                b"Content-Length: 2\r\n\r\n{}"
            )
            answer = await reader.read()
            writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 ")
    assert json.loads(body)["error"]["code"] == "upstream_unreachable"


def test_call_id_and_intent_reach_the_upstream_url() -> None:
    config = ProxyConfig(upstream="http://h/cassettes/x?tenant=t")
    headers = Headers({"Authorization": "Bearer k"})
    assert check_request("/v1/realtime?intent=transcription", headers, config, {}) == (
        SessionRequest(model="", authorization="Bearer k", intent="transcription")
    )
    checked = check_request("/v1/realtime?call_id=rtc_1", headers, config, {})
    assert isinstance(checked, SessionRequest) and checked.call_id == "rtc_1"
    target = build_upstream_target(config, "", "Bearer k", call_id="rtc_1")
    assert target.url == "ws://h/cassettes/x/v1/realtime?tenant=t&call_id=rtc_1"
    target = build_upstream_target(config, "m", "Bearer k", intent="transcription")
    assert target.url == "ws://h/cassettes/x/v1/realtime?tenant=t&model=m&intent=transcription"


@pytest.mark.asyncio
async def test_a_call_and_its_sideband_through_the_gateway(fake: FakeUpstream) -> None:
    offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    async with Gateway(ProxyConfig(upstream=fake.http_url)) as gateway:
        client = AsyncOpenAI(
            api_key="sk-test", base_url=gateway.url.replace("ws://", "http://", 1) + "/v1"
        )
        created = await client.realtime.calls.with_raw_response.create(sdp=offer, session=SESSION)
        assert created.status_code == 201
        call_id = created.headers["location"].rsplit("/", 1)[1]
        async with client.realtime.connect(call_id=call_id) as conn:
            event = await conn.recv()
        await client.realtime.calls.hangup(call_id)
        await client.close()
    assert event.type == "session.created"
    assert event.session.instructions == SESSION["instructions"]
