"""TLS: the local CA made once and cached, wss:// and https:// on the same port, own pairs."""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import trustme
from openai import AsyncOpenAI

from fakeupstream import FakeUpstream, FakeUpstreamError
from fakeupstream.serve.front_door import TLS_HINT
from fakeupstream.serve.tls import ServerCertificate, tls_cache_dir

from ..helpers import TIMEOUT, recv_event, ws_connect


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache directory: the user's is never touched."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def client_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(cassette="session", tls=True) as server:
        yield server


def test_the_cache_dir_respects_xdg_cache_home(cache_home: Path) -> None:
    assert tls_cache_dir() == cache_home / "fakeupstream" / "tls"


def test_the_local_ca_is_made_once_and_reused(cache_home: Path) -> None:
    first = ServerCertificate.local()
    assert first.ca == cache_home / "fakeupstream" / "tls" / "ca.pem"
    ca_bytes = first.ca.read_bytes()
    key = cache_home / "fakeupstream" / "tls" / "ca-key.pem"
    assert key.stat().st_mode & 0o077 == 0, "the CA key is readable by others"
    assert first.key.stat().st_mode & 0o077 == 0
    first.cert.unlink()  # a lost server certificate is issued again by the same CA
    second = ServerCertificate.local()
    assert second == first
    assert second.ca is not None and second.ca.read_bytes() == ca_bytes
    assert second.cert.is_file()


def test_without_trustme_the_error_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)
    with pytest.raises(FakeUpstreamError, match=r"pip install 'fakeupstream\[tls\]'"):
        ServerCertificate.local(tmp_path / "tls")


def test_a_mismatched_pair_is_one_clear_error(tmp_path: Path) -> None:
    ca = trustme.CA()
    one, other = ca.issue_cert("localhost"), ca.issue_cert("localhost")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    one.cert_chain_pems[0].write_to_path(str(cert))
    other.private_key_pem.write_to_path(str(key))
    with pytest.raises(FakeUpstreamError, match="cannot use TLS certificate"):
        FakeUpstream(tls=ServerCertificate(cert, key))
    with pytest.raises(FakeUpstreamError, match="cannot use TLS certificate"):
        FakeUpstream(tls=ServerCertificate(tmp_path / "missing.pem", key))


@pytest.mark.asyncio
async def test_wss_and_https_on_one_port_for_every_local_name(fake: FakeUpstream) -> None:
    assert fake.url.startswith("wss://127.0.0.1:")
    assert fake.http_url.startswith("https://127.0.0.1:")
    assert fake.ca_certificate is not None
    context = client_context(fake.ca_certificate)
    for host in ("127.0.0.1", "localhost"):
        url = f"wss://{host}:{fake.port}/v1/realtime?model=gpt-realtime"
        async with ws_connect(url, ssl=context) as ws:
            assert (await recv_event(ws))["type"] == "session.created"
    # The admin API (and every HTTP route) answers over https on the same port.
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", fake.port, ssl=context, server_hostname="localhost"
        )
        writer.write(b"GET /__fakeupstream/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        raw = await reader.read()
        writer.close()
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert b'"status":"ok"' in raw


@pytest.mark.asyncio
async def test_a_client_that_does_not_trust_the_ca_is_refused(fake: FakeUpstream) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        async with ws_connect(f"{fake.url}/v1/realtime?model=gpt-realtime"):
            pass


@pytest.mark.asyncio
async def test_the_official_sdk_over_wss_with_the_local_ca(fake: FakeUpstream) -> None:
    assert fake.ca_certificate is not None
    client = AsyncOpenAI(api_key="sk-test-sdk", base_url=f"{fake.http_url}/v1", max_retries=0)
    async with client.realtime.connect(
        model="gpt-realtime",
        websocket_connection_options={"ssl": client_context(fake.ca_certificate)},
    ) as conn:
        assert (await conn.recv()).type == "session.created"
    await client.close()


@pytest.mark.asyncio
async def test_a_users_own_pair_is_served_and_names_no_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    async with FakeUpstream(cassette="session", tls=ServerCertificate(cert, key)) as fake:
        assert fake.ca_certificate is None
        context = ssl.create_default_context()
        ca.configure_trust(context)
        async with ws_connect(f"{fake.url}/v1/realtime?model=gpt-realtime", ssl=context) as ws:
            assert (await recv_event(ws))["type"] == "session.created"


@pytest.mark.asyncio
async def test_a_tls_client_on_the_plain_port_is_closed_at_once_with_a_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fakeupstream.front_door")
    async with FakeUpstream(cassette="session") as fake:
        # No timeout of the client's own: the server's close is what ends the handshake.
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises((ssl.SSLError, ConnectionResetError)):
                await asyncio.open_connection(
                    "127.0.0.1", fake.port, ssl=ssl.create_default_context()
                )
        # The port still serves plain clients afterwards.
        async with ws_connect(f"{fake.url}/v1/realtime?model=gpt-realtime") as ws:
            assert (await recv_event(ws))["type"] == "session.created"
    assert [r.getMessage() for r in caplog.records if r.name == "fakeupstream.front_door"] == [
        TLS_HINT
    ]
