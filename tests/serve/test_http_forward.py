"""The recorder's REST side over real sockets: forwarded with its key, answered, saved.

The upstream is either a second fake (the calls round trip) or a bare asyncio server
that keeps what it received and answers with canned bytes, so the test sees exactly
what the recorder sent. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from fakeupstream import AccessPolicy, FakeUpstream, RecordingConfig, RecordMode, load_cassette
from fakeupstream.http_record import UpstreamRequest
from fakeupstream.serve.http_forward import send_upstream

from ..helpers import TIMEOUT

pytestmark = pytest.mark.asyncio

KEY = "sk-SENTINEL0123456789abcdefXYZ"
CLIENT_KEY = "sk-CLIENTSENTINEL9876543210zyx"
MINTED = "ek_0123456789abcdef0123456789abcdef"
SECRET_BODY = json.dumps({"session": {"type": "realtime", "instructions": "Be brief."}}).encode()
OFFER = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


class Upstream:
    """A bare HTTP server: keeps each request's bytes, answers each with ``answer``."""

    def __init__(self, answer: Callable[[], bytes], *, close: bool = True) -> None:
        self.answer = answer
        self.close = close
        self.received: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        self.received.append(head + await reader.readexactly(length))
        writer.write(self.answer())
        await writer.drain()
        if not self.close:  # a server that ignores Connection: close
            await reader.read()
        writer.close()


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[Upstream]:
    body = json.dumps({"value": MINTED, "expires_at": 1_800_000_600, "echo": CLIENT_KEY}).encode()
    server = Upstream(
        lambda: (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: c=1\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        ),
        close=False,
    )
    async with await asyncio.start_server(server.handle, "127.0.0.1", 0) as listening:
        server.port = listening.sockets[0].getsockname()[1]
        yield server


def recorder(directory: Path, upstream: str, **options: Any) -> FakeUpstream:
    config = RecordingConfig(mode=RecordMode.ONCE, api_key=KEY, upstream=upstream)
    return FakeUpstream(directory, cassette="rest", recording=config, **options)


async def request(
    fake: FakeUpstream, target: str, body: bytes = b"", *extra: tuple[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request with the client's key; the status, headers and body back."""
    headers = [("Authorization", f"Bearer {CLIENT_KEY}"), *extra]
    head = f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
        writer.write(head.encode() + b"\r\n" + body)
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
    top, _, payload = answer.partition(b"\r\n\r\n")
    lines = top.decode().split("\r\n")
    found = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), found, payload


def listing(directory: Path) -> list[Path]:
    return list(directory.iterdir())


async def idle(fake: FakeUpstream) -> None:
    async with asyncio.timeout(TIMEOUT):
        await fake.wait_idle()


async def test_the_upstream_gets_the_recorders_key_and_the_file_no_secret(
    upstream: Upstream, tmp_path: Path
) -> None:
    async with recorder(tmp_path, f"ws://127.0.0.1:{upstream.port}/v1/realtime") as fake:
        status, headers, body = await request(
            fake, "/v1/realtime/client_secrets", SECRET_BODY, ("Accept-Encoding", "gzip")
        )
        await idle(fake)
        assert fake.errors == []
    # The client gets the upstream's answer (its key included), not its cookies.
    assert status == 200 and json.loads(body)["value"] == MINTED
    assert "Set-Cookie" not in headers
    [sent] = upstream.received
    assert sent.startswith(b"POST /v1/realtime/client_secrets HTTP/1.1\r\n")
    assert f"Authorization: Bearer {KEY}\r\n".encode() in sent
    assert CLIENT_KEY.encode() not in sent and b"gzip" not in sent
    assert sent.endswith(b"\r\n\r\n" + SECRET_BODY)
    text = (tmp_path / "rest.yaml").read_text()
    assert MINTED not in text and KEY not in text and CLIENT_KEY not in text
    [exchange] = load_cassette(tmp_path / "rest.yaml").http
    assert exchange.response_body == {
        "value": "ek_REDACTED",
        "expires_at": 1_800_000_600,
        "echo": "REDACTED",
    }
    assert exchange.response_headers == (("content-type", "application/json"),)


async def test_an_unreachable_upstream_gets_502_and_nothing_is_saved(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with recorder(tmp_path, f"ws://127.0.0.1:{port}/v1/realtime") as fake:
        status, _, body = await request(fake, "/v1/realtime/client_secrets", SECRET_BODY)
        await idle(fake)
    assert status == 502
    assert json.loads(body)["error"]["code"] == "upstream_unreachable"
    assert listing(tmp_path) == []


async def test_an_answer_that_is_not_http_gets_502(tmp_path: Path) -> None:
    server = Upstream(lambda: b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    async with await asyncio.start_server(server.handle, "127.0.0.1", 0) as listening:
        port = listening.sockets[0].getsockname()[1]
        async with recorder(tmp_path, f"http://127.0.0.1:{port}") as fake:
            status, _, body = await request(fake, "/v1/realtime/client_secrets", SECRET_BODY)
    assert status == 502 and "not HTTP" in json.loads(body)["error"]["message"]
    assert listing(tmp_path) == []


async def test_with_a_client_token_only_its_own_clients_are_forwarded(
    upstream: Upstream, tmp_path: Path
) -> None:
    access = AccessPolicy(client_token="t0ken-for-tests")
    url = f"ws://127.0.0.1:{upstream.port}/v1/realtime"
    async with recorder(tmp_path, url, access=access) as fake:
        status, _, _ = await request(fake, "/v1/realtime/client_secrets", SECRET_BODY)
        assert status == 403 and upstream.received == []
        status, _, _ = await request(
            fake,
            "/v1/realtime/client_secrets?fakeupstream_token=t0ken-for-tests",
            SECRET_BODY,
        )
        await idle(fake)
    assert status == 200
    assert b"t0ken" not in upstream.received[0]
    assert "t0ken" not in (tmp_path / "rest.yaml").read_text()


async def test_a_call_and_its_hangup_record_and_replay(tmp_path: Path) -> None:
    sdp = ("Content-Type", "application/sdp")
    async with (
        FakeUpstream(cassette="text_response") as stand_in,
        recorder(tmp_path, stand_in.cassette_url("text_response")) as fake,
    ):
        live = await request(fake, "/cassettes/call/v1/realtime/calls", OFFER, sdp)
        hangup = f"/cassettes/call{live[1]['Location']}/hangup"
        assert (await request(fake, hangup))[0] == 200
        await idle(fake)
    assert live[0] == 201 and live[2].startswith(b"v=0\r\n")
    kept = load_cassette(tmp_path / "call.yaml").http
    assert [(x.path, x.status) for x in kept] == [
        ("/v1/realtime/calls", 201),
        (live[1]["Location"] + "/hangup", 200),
    ]
    async with FakeUpstream(tmp_path) as replay:
        again = await request(replay, "/cassettes/call/v1/realtime/calls", OFFER, sdp)
        assert (again[0], again[1]["location"], again[2]) == (201, live[1]["Location"], live[2])
        assert (await request(replay, hangup))[0] == 200  # a call this replay never made


async def test_send_upstream_reads_a_chunked_answer_that_ends_with_the_connection() -> None:
    server = Upstream(
        lambda: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    )
    async with await asyncio.start_server(server.handle, "127.0.0.1", 0) as listening:
        port = listening.sockets[0].getsockname()[1]
        data = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        answer = await send_upstream(
            UpstreamRequest("127.0.0.1", port, False, data),
            connect_timeout=TIMEOUT,
            answer_timeout=TIMEOUT,
        )
    assert (answer.status, answer.body) == (200, b"{}")
    assert server.received == [data]
