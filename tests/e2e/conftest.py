"""End-to-end wiring: a client → the proxy under test → the fake upstream (plugin fixture)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_asyncio

from fakeupstream.serve.threaded import ThreadedFakeUpstream
from proxy import Gateway

from .scenarios import Dial, dialer


@pytest_asyncio.fixture
async def gateway(fakeupstream: ThreadedFakeUpstream, proxy) -> Gateway:  # type: ignore[no-untyped-def]
    """The proxy, pointed at the fake upstream; the test's cassette marker picks the replay."""
    gw: Gateway = await proxy(fakeupstream.http_url)
    return gw


@pytest.fixture
def dial(gateway: Gateway) -> Dial:
    """Open a client connection through the proxy (``dial(headers=..., model=...)``)."""
    return dialer(
        lambda model: (
            f"{gateway.url}/v1/realtime" + ("" if model is None else f"?model={quote(model)}")
        )
    )
