"""No key reaches a log line, even with websockets' header logging at debug level."""

from __future__ import annotations

import logging

import pytest

from fakeupstream import FakeUpstream
from fakeupstream.serve.logs import redact_text

from ..helpers import recv_event, ws_connect

SENTINEL = "sk-SENTINELlogs0123456789"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("< Authorization: Bearer abc", "< Authorization: REDACTED"),
        ("> api-key: abc", "> api-key: REDACTED"),
        ("< X-Trace: abc", "< X-Trace: abc"),
        ("token Bearer abc.def", "token Bearer REDACTED"),
        (
            "< GET /v1/realtime?model=m&api_key=xyz HTTP/1.1",
            "< GET /v1/realtime?model=m&api_key=REDACTED HTTP/1.1",
        ),
        (
            "protocols realtime, openai-insecure-api-key.ek_1",
            "protocols realtime, openai-insecure-api-key.REDACTED",
        ),
        ("key sk-abcdefghijkl and ek_abcdefghijkl", "key sk-REDACTED and ek_REDACTED"),
    ],
)
def test_redact_text(line: str, expected: str) -> None:
    assert redact_text(line) == expected


@pytest.mark.asyncio
async def test_debug_logs_of_a_session_hold_no_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="fakeupstream")
    async with FakeUpstream(cassette="session") as fake:
        url = f"{fake.url}/v1/realtime?model=gpt-realtime&api_key={SENTINEL}"
        async with ws_connect(
            url,
            {"Authorization": f"Bearer {SENTINEL}", "api-key": SENTINEL},
            subprotocols=["realtime", f"openai-insecure-api-key.{SENTINEL}"],
        ) as ws:
            await recv_event(ws)
    assert "Authorization: REDACTED" in caplog.text  # the headers were logged...
    assert SENTINEL not in caplog.text  # ...but not the key
    assert "SENTINEL" not in caplog.text
