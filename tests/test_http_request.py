"""Reading a plain HTTP request from bytes: head, Content-Length and chunked bodies."""

from __future__ import annotations

import json

import pytest

from fakeupstream.http_request import (
    INCOMPLETE,
    HttpRequest,
    complete_size,
    parse_request,
    parse_response,
)
from fakeupstream.responses import HttpResponse


def error_code(answer: object) -> tuple[int, str | None]:
    assert isinstance(answer, HttpResponse)
    return answer.status, json.loads(answer.body)["error"]["code"]


def test_a_request_without_a_body() -> None:
    request = parse_request(
        b"GET /v1/models?x=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer k\r\n\r\n"
    )
    assert request == HttpRequest(
        "GET", "/v1/models?x=1", (("Host", "h"), ("Authorization", "Bearer k")), b""
    )
    assert isinstance(request, HttpRequest)
    assert request.path == "/v1/models"
    assert request.header("authorization") == "Bearer k"
    assert request.header("Missing") is None


def test_a_content_length_body_is_waited_for() -> None:
    head = b"POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\n"
    assert parse_request(head) is INCOMPLETE
    assert parse_request(head + b'{"a": ') is INCOMPLETE
    request = parse_request(head + b'{"a": true}')
    assert isinstance(request, HttpRequest) and request.body == b'{"a": true}'


def test_a_chunked_body_is_joined_once_the_last_chunk_arrives() -> None:
    head = b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\n"
    assert parse_request(head + chunks) is INCOMPLETE
    assert parse_request(head + chunks + b"0\r\n") is INCOMPLETE
    request = parse_request(head + chunks + b"0\r\n\r\n")
    assert isinstance(request, HttpRequest) and request.body == b"Wikipedia "
    trailers = parse_request(head + chunks + b"0\r\nX-Trailer: 1\r\n\r\n")
    assert isinstance(trailers, HttpRequest) and trailers.body == b"Wikipedia "


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"NONSENSE\r\n\r\n", 400, "bad_request"),
        (b"GET /p HTTP/1.1\r\nno colon here\r\n\r\n", 400, "bad_request"),
        (b"GET //[::1/p HTTP/1.1\r\n\r\n", 400, "invalid_request_target"),
        (b"POST /p HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400, "bad_request"),
        (b"POST /p HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413, "request_too_large"),
        (
            b"POST /p HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "unsupported_transfer_encoding",
        ),
        (b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad_request"),
        (
            b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n",
            400,
            "bad_request",
        ),
        (b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", 413, "request_too_large"),
    ],
)
def test_bad_requests_get_the_status_a_server_gives(raw: bytes, status: int, code: str) -> None:
    assert error_code(parse_request(raw, max_body=100)) == (status, code)


def test_a_chunk_size_line_that_never_ends_is_refused() -> None:
    raw = b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 2000
    assert error_code(parse_request(raw)) == (400, "bad_request")


def test_the_complete_size_comes_from_content_length() -> None:
    head = b"POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n"
    assert complete_size(head) == len(head) + 10
    assert complete_size(b"GET / HTTP/1.1\r\n\r\n") == 18
    assert complete_size(b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") is None
    assert complete_size(b"POST /p HTTP/1.1\r\nContent-Len") is None


# -- the upstream's answers (the recorder) ------------------------------------------------


def test_an_answer_with_a_length_is_complete_when_its_body_is() -> None:
    head = b"HTTP/1.1 201 Created\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\n"
    assert parse_response(head + b"v=0", eof=False) is INCOMPLETE
    answer = parse_response(head + b"v=0\r\n", eof=False)
    assert answer == HttpResponse(
        201, b"v=0\r\n", (("Content-Type", "application/sdp"), ("Content-Length", "5"))
    )


def test_a_chunked_answer_and_one_that_ends_with_the_connection() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    answer = parse_response(chunked, eof=False)
    assert isinstance(answer, HttpResponse) and answer.body == b"abc"
    until_eof = b"HTTP/1.0 200 OK\r\n\r\n{}"
    assert parse_response(until_eof, eof=False) is INCOMPLETE
    answer = parse_response(until_eof, eof=True)
    assert isinstance(answer, HttpResponse) and (answer.status, answer.body) == (200, b"{}")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "not HTTP"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", "before the end of its answer's body"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "before the end of its answer's head"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "bad body"),
    ],
)
def test_a_broken_answer_is_an_error_not_a_hang(data: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_response(data, eof=True)


def test_an_answer_over_the_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="larger than 4 bytes"):
        parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", eof=False, max_body=4)
