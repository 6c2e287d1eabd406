"""A REST request being recorded, as plain data: the bytes sent upstream, what is kept."""

from __future__ import annotations

import json

import pytest

from fakeupstream.cassette import HttpExchange
from fakeupstream.http_record import (
    MintedKeys,
    http_body,
    passed_back,
    recorded_exchange,
    unprefixed_target,
    upstream_request,
)
from fakeupstream.http_request import HttpRequest
from fakeupstream.redaction import Redactor
from fakeupstream.responses import HttpResponse

KEY = "sk-SENTINEL0123456789abcdefXYZ"
CLIENT_KEY = "sk-CLIENTSENTINEL9876543210zyx"
MINTED = "ek_0123456789abcdef0123456789abcdef"
BODY = json.dumps({"session": {"type": "realtime", "instructions": "Be brief."}}).encode()


def client_request(target: str = "/cassettes/take/v1/realtime/client_secrets") -> HttpRequest:
    return HttpRequest(
        "POST",
        target,
        (
            ("Host", "127.0.0.1:8766"),
            ("Authorization", f"Bearer {CLIENT_KEY}"),
            ("Content-Type", "application/json"),
            ("Accept-Encoding", "gzip"),
            ("X-Api-Key", CLIENT_KEY),
            ("Content-Length", str(len(BODY))),
            ("OpenAI-Beta", "realtime=v1"),
        ),
        BODY,
    )


def head_of(data: bytes) -> list[str]:
    return data.partition(b"\r\n\r\n")[0].decode().split("\r\n")


def test_the_upstream_gets_the_real_key_and_the_clients_safe_headers() -> None:
    sent = upstream_request("wss://api.openai.com/v1/realtime", client_request(), KEY)
    assert (sent.host, sent.port, sent.tls) == ("api.openai.com", 443, True)
    assert head_of(sent.data) == [
        "POST /v1/realtime/client_secrets HTTP/1.1",
        "Host: api.openai.com",
        f"Authorization: Bearer {KEY}",
        "Content-Type: application/json",
        "OpenAI-Beta: realtime=v1",  # passed on, as on the socket: recorded as it is
        f"Content-Length: {len(BODY)}",
        "Connection: close",
    ]
    assert sent.data.endswith(b"\r\n\r\n" + BODY)
    assert CLIENT_KEY.encode() not in sent.data
    assert KEY not in repr(sent)


@pytest.mark.parametrize(
    ("upstream", "target", "where"),
    [
        ("ws://127.0.0.1:9/v1/realtime", "/v1/models", ("127.0.0.1", 9, False, "/v1/models")),
        (
            "http://127.0.0.1:9/cassettes/session",
            "/v1/realtime/calls",
            ("127.0.0.1", 9, False, "/cassettes/session/v1/realtime/calls"),
        ),
        (
            "https://user:pw@gw.example/openai/realtime?tenant=t",
            "/v1/models?limit=2&api_key=sk-nope",
            ("gw.example", 443, True, "/openai/v1/models?tenant=t&limit=2"),
        ),
    ],
)
def test_where_a_rest_request_goes(
    upstream: str, target: str, where: tuple[str, int, bool, str]
) -> None:
    sent = upstream_request(upstream, HttpRequest("GET", target), KEY)
    first, host = head_of(sent.data)[:2]
    assert (sent.host, sent.port, sent.tls, first.split(" ")[1]) == where
    assert host == f"Host: {where[0]}" + ("" if where[1] in (80, 443) else f":{where[1]}")


def test_the_kept_exchange_holds_no_key_and_no_minted_secret() -> None:
    answer = HttpResponse(
        200,
        json.dumps({"value": MINTED, "expires_at": 1, "echo": CLIENT_KEY}).encode(),
        (
            ("Content-Type", "application/json"),
            ("Set-Cookie", "__cf_bm=abc"),
            ("openai-processing-ms", "12"),
            ("Date", "x"),
        ),
    )
    redactor = Redactor((KEY,))
    redactor.add_secret(CLIENT_KEY)
    request = client_request("/cassettes/take/v1/realtime/client_secrets?api_key=" + CLIENT_KEY)
    assert recorded_exchange(request, answer, redactor) == HttpExchange(
        method="POST",
        path="/v1/realtime/client_secrets?api_key=REDACTED",
        status=200,
        request_body={"session": {"type": "realtime", "instructions": "Be brief."}},
        response_body={"value": "ek_REDACTED", "expires_at": 1, "echo": "REDACTED"},
        response_headers=(("content-type", "application/json"),),
    )


def test_a_calls_location_is_kept_and_an_sdp_body_is_text() -> None:
    answer = HttpResponse(
        201,
        b"v=0\r\ns=-\r\n",
        (("Content-Type", "application/sdp"), ("Location", "/v1/realtime/calls/rtc_1")),
    )
    request = HttpRequest("POST", "/v1/realtime/calls", (), b"v=0\r\n")
    kept = recorded_exchange(request, answer, Redactor())
    assert (kept.request_body, kept.response_body) == ("v=0\r\n", "v=0\r\ns=-\r\n")
    assert kept.response_headers == (
        ("content-type", "application/sdp"),
        ("location", "/v1/realtime/calls/rtc_1"),
    )


def test_bodies_are_json_objects_or_lists_else_text() -> None:
    assert http_body(b"") is None
    assert http_body(b'{"a": 1}') == {"a": 1}
    assert http_body(b"[1]") == [1]
    assert http_body(b'"just a string"') == '"just a string"'
    assert http_body(b"NaN") == "NaN"
    assert http_body(b"\xff") == "\ufffd"


def test_the_client_gets_the_answer_without_the_upstreams_framing() -> None:
    answer = HttpResponse(
        201,
        b"v=0",
        (("Content-Length", "3"), ("Location", "/x"), ("Set-Cookie", "a=b"), ("Retry-After", "1")),
    )
    assert passed_back(answer) == HttpResponse(
        201, b"v=0", (("Location", "/x"), ("Retry-After", "1"))
    )


def test_minted_keys_are_remembered_to_open_their_session() -> None:
    minted = MintedKeys()
    legacy = {"client_secret": {"value": MINTED.replace("0", "1")}}
    assert minted.add_from(HttpResponse(200, json.dumps({"value": MINTED}).encode())) == [MINTED]
    assert minted.add_from(HttpResponse(200, json.dumps(legacy).encode())) == [
        MINTED.replace("0", "1")
    ]
    assert MINTED in minted and "ek_test" not in minted


def test_the_cassette_prefix_is_not_part_of_the_kept_path() -> None:
    assert unprefixed_target("/cassettes/a/b/v1/models?x=1") == "/v1/models?x=1"
    assert unprefixed_target("/v1/models") == "/v1/models"
