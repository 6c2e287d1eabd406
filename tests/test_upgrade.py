"""The upgrade request and routing: which paths are realtime endpoints, which cassette."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakeupstream.upgrade import Route, UpgradeRequest, query_pairs, route


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/realtime", Route(None, "/v1/realtime")),
        ("/v1/realtime/", Route(None, "/v1/realtime")),
        ("/cassettes/session/v1/realtime", Route("session", "/v1/realtime")),
        ("/v1/other", None),
        ("/cassettes/session", None),
        (
            "/cassettes/test_chat/test_reply/v1/realtime",
            Route("test_chat/test_reply", "/v1/realtime"),
        ),
        ("/cassettes/session/v1/other", None),
        ("/cassettes//v1/realtime", None),
        ("/", None),
    ],
)
def test_route(path: str, expected: Route | None) -> None:
    assert route(path) == expected


def test_a_request_keeps_query_headers_and_subprotocols_in_order() -> None:
    request = UpgradeRequest.from_target(
        "/cassettes/x/v1/realtime?model=m&a=1&a=2", [("X-A", "1"), ("x-a", "2")], ["realtime"]
    )
    assert request.path == "/cassettes/x/v1/realtime"
    assert request.param("a") == "1"
    assert request.header("X-a") == "1"
    assert request.with_path("/v1/realtime").query == request.query
    assert request.subprotocols == ("realtime",)


def test_an_unbalanced_bracket_is_a_value_error_the_planner_turns_into_400() -> None:
    with pytest.raises(ValueError, match="IPv6"):
        UpgradeRequest.from_target("//[::1/v1/realtime", [])


@given(st.text(alphabet="ab=&%+;2F ", max_size=12) | st.text(max_size=8))
def test_query_pairs_are_those_of_parse_qsl(query: str) -> None:
    assert query_pairs(query) == tuple(parse_qsl(query, keep_blank_values=True))


def test_a_plain_query_is_split_and_an_encoded_one_decoded() -> None:
    assert query_pairs("model=gpt-realtime&&flag&=x&a=b=c") == (
        ("model", "gpt-realtime"),
        ("flag", ""),
        ("", "x"),
        ("a", "b=c"),
    )
    assert query_pairs("call%5Fid=rtc+1") == (("call_id", "rtc 1"),)
