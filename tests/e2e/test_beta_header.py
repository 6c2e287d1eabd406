"""The OpenAI-Beta regression: the bug this project grew from, now visible and explained.

The GA API accepts the upgrade of a request carrying ``OpenAI-Beta: realtime=v1``,
sends one ``error`` event (``beta_api_shape_disabled``) and closes with 4000. A
gateway that forwarded the header made its clients see a bare 1005.
"""

from __future__ import annotations

import pytest

from fakeupstream.serve.threaded import ThreadedFakeUpstream

from .scenarios import AUTH, Dial, dialer, recv, text_session

pytestmark = [pytest.mark.asyncio, pytest.mark.cassette("beta_header_rejected")]

BETA = {**AUTH, "OpenAI-Beta": "realtime=v1"}
MESSAGE = "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."


async def expect_beta_rejection(dial: Dial) -> None:
    async with dial(headers=BETA) as ws:
        error = await recv(ws)
        await ws.wait_closed()
    assert error["type"] == "error"
    assert error["event_id"]
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "beta_api_shape_disabled",
        "message": MESSAGE,
        "param": None,
        "event_id": None,
    }
    assert ws.close_code == 4000  # not 1005: the close frame made it through
    assert ws.close_reason == "invalid_request_error.beta_api_shape_disabled"


async def test_the_fake_rejects_the_beta_header_like_the_ga_api(
    fakeupstream: ThreadedFakeUpstream,
) -> None:
    await expect_beta_rejection(
        dialer(lambda model: f"{fakeupstream.url}/v1/realtime?model={model}")
    )


async def test_a_client_sending_the_beta_header_through_the_proxy_gets_a_ga_session(
    dial: Dial,
) -> None:
    async with dial(headers=BETA) as ws:
        await text_session(ws)


async def test_a_proxy_that_forwards_the_beta_header_hands_its_client_the_error_and_4000(
    fakeupstream: ThreadedFakeUpstream, proxy
) -> None:  # type: ignore[no-untyped-def]
    # A gateway that sends OpenAI-Beta upstream, reproduced by configuration.
    gateway = await proxy(fakeupstream.http_url, upstream_headers=["OpenAI-Beta: realtime=v1"])
    await expect_beta_rejection(dialer(lambda model: gateway.realtime_url(model)))
