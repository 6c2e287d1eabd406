"""No key reaches a log line, even with websockets' header logging at debug level."""

from __future__ import annotations

import io
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakeupstream import FakeUpstream
from fakeupstream.report import ConnectionReport, Mismatch
from fakeupstream.serve.logs import (
    _mask,
    cli_logging,
    connection_line,
    frame_summary,
    redact_text,
)

from ..helpers import recv_event, send_event, ws_connect

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


_PIECES = st.sampled_from(
    [
        "Authorization",
        "X-Api-Key",
        "bearer",
        "BASIC",
        ":",
        ": ",
        " ",
        "\n",
        "< ",
        "?",
        "&",
        "=",
        "key",
        "Token",
        "auth",
        "sk-",
        "ek_",
        "openai-insecure-api-key.",
        "abcdefghij",
        ",",
    ]
)


@given(st.lists(_PIECES | st.text(max_size=3), max_size=12).map("".join))
def test_the_quick_screen_never_skips_a_line_the_patterns_would_mask(text: str) -> None:
    # redact_text skips the patterns when its screen finds nothing: the screen must
    # match wherever any of them would, or a key would reach the log.
    assert redact_text(text) == _mask(text)


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


def test_frame_summary_names_the_event_type_never_the_content() -> None:
    assert frame_summary('{"type":"session.update","key":"sk-x"}') == "session.update (38 chars)"
    assert frame_summary("not json") == "non-JSON text (8 chars)"
    assert frame_summary(b"\x00\x01") == "binary frame (2 bytes)"
    assert frame_summary("[1]") == "event without a type (3 chars)"


def test_connection_line_says_cassette_outcome_steps_mismatches_and_close() -> None:
    report = ConnectionReport(id=3, cassette="session", path="/v1/realtime?model=m", total=4)
    report.replay()
    report.played, report.close_code, report.closed_by = 4, 1000, "client"
    assert connection_line(report, report_url="http://h:1/__fakeupstream/report") == (
        "connection 3 /v1/realtime?model=m -> cassette 'session', replayed, "
        "4/4 steps played, 0 mismatches, closed 1000 by client"
    )
    report.mismatches.append(Mismatch("client frame", 1, 7, None, None, ["type: ..."]))
    assert connection_line(report, report_url="http://h:1/__fakeupstream/report").endswith(
        "1 mismatch, closed 1000 by client; details: http://h:1/__fakeupstream/report"
    )
    refused = ConnectionReport(id=4, cassette=None, path="/v1/realtime")
    refused.refuse()
    assert connection_line(refused, status=404) == (
        "connection 4 /v1/realtime -> no cassette, refused (HTTP 404), 0 mismatches"
    )


async def serve_one_session(verbosity: int) -> str:
    """The CLI's log (at ``verbosity``) of one session with a key in every place."""
    stream = io.StringIO()
    with cli_logging(verbosity, stream):
        async with FakeUpstream(cassette="session") as fake:
            url = f"{fake.url}/v1/realtime?model=gpt-realtime&api_key={SENTINEL}"
            async with ws_connect(url, {"Authorization": f"Bearer {SENTINEL}"}) as ws:
                await recv_event(ws)
                await send_event(ws, {"type": "session.update", "session": {"type": "realtime"}})
                await recv_event(ws)
            await fake.wait_idle()
    assert SENTINEL not in stream.getvalue()
    return stream.getvalue()


@pytest.mark.asyncio
async def test_cli_logging_levels() -> None:
    default = (await serve_one_session(0)).splitlines()
    assert len(default) == 1
    assert default[0].endswith(
        "connection 1 /v1/realtime?model=gpt-realtime&api_key=REDACTED -> cassette 'session', "
        "replayed, 3/3 steps played, 0 mismatches, closed 1000 by client"
    )
    frames = await serve_one_session(1)
    assert "connection 1 > session.created" in frames
    assert "connection 1 < session.update" in frames
    assert "Authorization" not in frames  # websockets' own log is for -vv
    headers = await serve_one_session(2)
    assert "Authorization: REDACTED" in headers
    assert await serve_one_session(-1) == ""
    # Only fakeupstream's loggers were touched, and they are restored afterwards.
    assert logging.getLogger().level == logging.WARNING
    assert logging.getLogger("fakeupstream").level == logging.NOTSET


def _handshake_record(exc: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        "fakeupstream.websockets",
        logging.ERROR,
        __file__,
        1,
        "opening handshake failed",
        None,
        (type(exc), exc, None),
    )


def test_a_client_gone_before_its_request_is_not_an_error_on_any_websockets() -> None:
    from websockets.exceptions import InvalidMessage

    from fakeupstream.serve.logs import QuietEarlyDisconnects

    quiet = QuietEarlyDisconnects()
    gone = InvalidMessage("did not receive a valid HTTP request")
    gone.__cause__ = EOFError("connection closed while reading HTTP request line")
    assert not quiet.filter(_handshake_record(gone))
    garbled = InvalidMessage("did not receive a valid HTTP request")
    garbled.__cause__ = ValueError("invalid HTTP request line: nonsense")
    assert quiet.filter(_handshake_record(garbled))  # a real problem is still logged
    assert quiet.filter(_handshake_record(RuntimeError("boom")))
