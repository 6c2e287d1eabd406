"""A cassette's ``http:`` list: read with file:line errors, dumped back the same."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fakeupstream.cassette import Cassette, Episode, HttpExchange
from fakeupstream.exceptions import CassetteError
from fakeupstream.storage.yaml_dumper import dumps_cassette
from fakeupstream.storage.yaml_reader import loads_cassette

WITH_HTTP = """\
version: 1
http:
  - request:
      method: POST
      path: /v1/realtime/client_secrets
      body: {session: {type: realtime, instructions: Be brief.}}
    response:
      status: 200
      headers: {content-type: application/json}
      body: {value: ek_REDACTED, expires_at: 1758191700}
  - request: {method: POST, path: /v1/realtime/calls?x=1, body: "v=0\\r\\n"}
    response:
      status: 201
      headers: {content-type: application/sdp, location: /v1/realtime/calls/rtc_1}
      body: "v=0\\r\\n"
  - request: {method: GET, path: /v1/models}
    response: {status: 200, body: [1, 2]}
timeline:
  - server: {type: session.created}
"""


def load(text: str) -> Cassette:
    return loads_cassette(textwrap.dedent(text), name="t", path=Path("t.yaml"))


def test_every_part_of_an_exchange_is_read() -> None:
    cassette = load(WITH_HTTP)
    secret, call, models = cassette.http
    assert secret == HttpExchange(
        method="POST",
        path="/v1/realtime/client_secrets",
        status=200,
        request_body={"session": {"type": "realtime", "instructions": "Be brief."}},
        response_body={"value": "ek_REDACTED", "expires_at": 1758191700},
        response_headers=(("content-type", "application/json"),),
    )
    assert secret.line == 3
    assert (call.request_body, call.response_body) == ("v=0\r\n", "v=0\r\n")
    assert call.route == "/v1/realtime/calls"
    assert dict(call.response_headers)["location"] == "/v1/realtime/calls/rtc_1"
    assert (models.request_body, models.response_body) == (None, [1, 2])
    assert not cassette.simulated and len(cassette.timeline) == 1


def test_load_dump_load_keeps_the_exchanges_and_puts_them_before_the_socket() -> None:
    cassette = load(WITH_HTTP)
    text = dumps_cassette(cassette)
    assert text.index("http:") < text.index("timeline:")
    again = loads_cassette(text, name="t")
    assert again.http == cassette.http
    assert dumps_cassette(again) == text


def test_a_cassette_of_http_exchanges_only_has_no_connection() -> None:
    cassette = load("""\
        version: 1
        http:
          - request: {method: GET, path: /v1/models}
            response: {status: 200, body: {object: list, data: []}}
        """)
    assert cassette.simulated
    assert cassette.episodes == (Episode(),)
    text = dumps_cassette(cassette)
    assert "timeline" not in text
    assert loads_cassette(text, name="t") == cassette


def test_http_next_to_connections() -> None:
    cassette = load("""\
        version: 1
        http:
          - request: {method: POST, path: /v1/realtime/client_secrets}
            response: {status: 200}
        connections:
          - timeline: []
          - timeline: []
        """)
    assert len(cassette.http) == 1 and len(cassette.episodes) == 2
    assert loads_cassette(dumps_cassette(cassette), name="t") == cassette


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("http: {}", 2, "expected `http` (a list), got a mapping"),
        ("http:\n  - request: {method: GET, path: /}", 3, "missing required key 'response'"),
        (
            "http:\n  - request: {method: GET, path: /}\n    response: {status: 200}\n    at: 1",
            5,
            "unknown key 'at' in an HTTP exchange; expected one of: request, response",
        ),
        (
            "http:\n  - request: {method: post, path: /}\n    response: {status: 200}",
            3,
            "expected an HTTP method in capitals (POST), got 'post'",
        ),
        (
            "http:\n  - request: {method: GET, path: v1/models}\n    response: {status: 200}",
            3,
            "expected a request path starting with '/', got 'v1/models'",
        ),
        (
            "http:\n  - request: {method: GET, path: /}\n    response: {status: 101}",
            4,
            "expected an HTTP status from 200 to 599, got 101",
        ),
        (
            "http:\n  - request: {method: GET, path: /}\n    response: {status: '200'}",
            4,
            "expected an HTTP status (an integer)",
        ),
        (
            "http:\n  - request: {method: GET, path: /}\n    response: {status: 200, body: 3}",
            4,
            "expected a body: JSON (a mapping or a list) or text (a string), got int '3'",
        ),
        (
            "http:\n  - request: {method: GET, path: /, headers: {a: b}}\n"
            "    response: {status: 200}",
            3,
            "unknown key 'headers' in an HTTP `request`",
        ),
        (
            "http:\n  - request: {method: GET, path: /}\n"
            "    response: {status: 200, headers: {A: b, a: c}}",
            4,
            "duplicate name 'a' in `headers`",
        ),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, expected: str) -> None:
    with pytest.raises(CassetteError) as info:
        load("version: 1\n" + text + "\ntimeline: []\n")
    assert info.value.line == line
    assert expected in str(info.value)
    assert str(info.value).startswith(f"t.yaml:{line}:")
