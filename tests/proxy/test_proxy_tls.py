"""The gateway serving wss:// (``--tls-cert``/``--tls-key``): what TLS-only clients dial."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
import trustme
from websockets.asyncio.client import connect

from fakeupstream import FakeUpstream
from proxy import Gateway, ProxyConfig
from proxy.__main__ import main

AUTH = {"Authorization": "Bearer sk-test-proxy"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-key", "k.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "/no/c.pem", "--tls-key", "/no/k.pem"], "cannot use TLS certificate"),
    ],
)
def test_bad_tls_flags_are_usage_errors(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--upstream", "http://h", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.asyncio
async def test_the_gateway_serves_wss_with_its_context() -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    async with (
        FakeUpstream(cassette="session") as fake,
        Gateway(ProxyConfig(upstream=fake.http_url), tls=server) as gateway,
    ):
        assert gateway.url.startswith("wss://127.0.0.1:")
        async with connect(
            gateway.realtime_url("gpt-realtime"), additional_headers=AUTH, ssl=client
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"


def test_cert_files_are_loaded(tmp_path: Path) -> None:
    from proxy.__main__ import _tls_context

    leaf = trustme.CA().issue_cert("127.0.0.1")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    assert isinstance(_tls_context(str(cert), str(key)), ssl.SSLContext)
    assert _tls_context(None, None) is None
