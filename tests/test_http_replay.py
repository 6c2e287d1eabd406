"""Recorded HTTP exchanges as plain data: which one answers, and the bytes it answers with."""

from __future__ import annotations

from fakeupstream.cassette import Cassette, HttpExchange
from fakeupstream.http_replay import HttpPlayback, body_bytes, recorded_response

FIRST = HttpExchange("POST", "/v1/realtime/client_secrets", 200, response_body={"n": 1})
SECOND = HttpExchange("POST", "/v1/realtime/client_secrets?x=1", 400, response_body={"n": 2})
MODELS = HttpExchange("GET", "/v1/models/", 200, response_body=[])
CASSETTE = Cassette(name="c", http=(FIRST, MODELS, SECOND))


def test_the_nth_request_gets_the_nth_exchange_then_the_last_again() -> None:
    playback = HttpPlayback()
    taken = [playback.take(CASSETTE, "POST", "/v1/realtime/client_secrets") for _ in range(4)]
    assert taken == [FIRST, SECOND, SECOND, SECOND]


def test_method_and_path_are_matched_not_the_query_or_a_trailing_slash() -> None:
    playback = HttpPlayback()
    assert playback.take(CASSETTE, "GET", "/v1/models") is MODELS
    assert playback.take(CASSETTE, "GET", "/v1/models/") is MODELS
    assert playback.take(CASSETTE, "POST", "/v1/models") is None
    assert playback.take(CASSETTE, "GET", "/v1/models/gpt-realtime") is None


def test_each_cassette_counts_on_its_own_and_reset_starts_again() -> None:
    playback = HttpPlayback()
    other = Cassette(name="other", http=(FIRST, SECOND))
    assert playback.take(CASSETTE, "POST", "/v1/realtime/client_secrets") is FIRST
    assert playback.take(other, "POST", "/v1/realtime/client_secrets") is FIRST
    assert playback.take(CASSETTE, "POST", "/v1/realtime/client_secrets") is SECOND
    playback.reset()
    assert playback.take(CASSETTE, "POST", "/v1/realtime/client_secrets") is FIRST


def test_bodies_go_on_the_wire_as_json_text_or_nothing() -> None:
    assert body_bytes({"a": "é"}) == '{"a":"é"}'.encode()
    assert body_bytes([1, 2]) == b"[1,2]"
    assert body_bytes("v=0\r\n") == b"v=0\r\n"
    assert body_bytes(None) == b""


def test_a_json_answer_gets_a_content_type_when_none_was_kept() -> None:
    answer = recorded_response(MODELS, {"object": "list"})
    assert (answer.status, answer.body) == (200, b'{"object":"list"}')
    assert answer.headers == (("content-type", "application/json"),)
    sdp = HttpExchange(
        "POST",
        "/v1/realtime/calls",
        201,
        response_headers=(("content-type", "application/sdp"), ("location", "/x")),
    )
    assert recorded_response(sdp, "v=0").headers == sdp.response_headers
    text = recorded_response(HttpExchange("GET", "/", 404), "not found")
    assert text.headers == ()
