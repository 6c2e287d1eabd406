"""HTTP responses as values, and the one error shape."""

from __future__ import annotations

import json

from fakeupstream.responses import error_body, error_response, json_response, reason_phrase


def test_the_error_shape_is_the_openai_one() -> None:
    assert error_body("no such thing", "not_found") == {
        "error": {
            "type": "invalid_request_error",
            "code": "not_found",
            "message": "no such thing",
            "param": None,
        }
    }
    extra = error_body("m", "c", type="upstream_error", param="name", available=["a"])
    assert extra["error"]["type"] == "upstream_error"
    assert extra["error"]["param"] == "name"
    assert extra["error"]["available"] == ["a"]


def test_encoding_sets_length_close_and_the_content_type() -> None:
    response = error_response(429, "slow down", "rate_limit", headers=(("Retry-After", "3"),))
    raw = response.encode()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 429 Too Many Requests"
    assert "Content-Type: application/json" in lines
    assert "Retry-After: 3" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert "Connection: close" in lines
    assert json.loads(body)["error"]["code"] == "rate_limit"


def test_unusual_statuses_still_encode() -> None:
    assert reason_phrase(599) == "Unknown"
    assert json_response(599, {}).encode().startswith(b"HTTP/1.1 599 Unknown\r\n")
