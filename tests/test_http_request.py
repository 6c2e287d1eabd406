"""Reading a plain HTTP request from bytes: head, Content-Length and chunked bodies."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakeupstream.http_request import (
    INCOMPLETE,
    HttpRequest,
    complete_size,
    is_plain_upgrade,
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


CLIENT_HEADS = [
    # websockets 17
    b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer sk-test\r\n"
    b"User-Agent: Python/3.11 websockets/17.4\r\n\r\n",
    # Node's ws, as the official SDK sends it (lowercase names)
    b"GET /cassettes/chat/v1/realtime?model=m HTTP/1.1\r\nsec-websocket-version: 13\r\n"
    b"sec-websocket-key: abc==\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
    b"authorization: Bearer ek_x\r\nhost: localhost:1\r\n\r\n",
    # a browser: Origin and subprotocols, the key in one of them
    b"GET /v1/realtime?model=m HTTP/1.1\r\nHost: h\r\nOrigin: http://localhost:3000\r\n"
    b"Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.sk-x\r\n\r\n",
]


@pytest.mark.parametrize("head", CLIENT_HEADS)
def test_what_clients_send_is_a_plain_upgrade(head: bytes) -> None:
    assert is_plain_upgrade(head)
    assert is_plain_upgrade(head + b"\x81\x05early")  # a frame sent right behind it


@pytest.mark.parametrize(
    "head",
    [
        b"POST /v1/realtime HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nHost: h\r\n\r\n",  # no Upgrade: REST
        b"GET /v1/realtime HTTP/1.1\r\nUpgrade: h2c\r\nUpgrade: websocket\r\n\r\n",
        b"GET /v1/realtime HTTP/1.1\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n{}",
        b"GET /v1/realtime HTTP/1.1\r\n Upgrade: websocket\r\n\r\n",  # malformed line
        b"GET //h[/v1/realtime HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",  # bad target
        b"GET /v1/realtime HTTP/1.1\r\nUpgrade: websocket\r\n",  # head not complete
    ],
)
def test_anything_else_is_left_to_the_full_parse(head: bytes) -> None:
    assert not is_plain_upgrade(head)


_LINES = st.sampled_from(
    [
        b"Host: h",
        b"Upgrade: websocket",
        b"upgrade:\tWebSocket ",
        b"Upgrade: h2c",
        b"UPGRADE:websocket\r",
        b"Upgrade: \x85websocket",
        b"Connection: Upgrade",
        b"Content-Length: 0",
        b"content-length: x",
        b"Transfer-Encoding: chunked",
        b" Upgrade: websocket",
        b"Upgrade : websocket",
        b"no colon",
        b":empty name",
        b"X-Odd: a\nb",
        b"X-Latin: \xe9",
        b"",
    ]
)
_REQUEST_LINES = st.sampled_from(
    [
        b"GET /v1/realtime?model=m HTTP/1.1",
        b"GET /v1/realtime HTTP/1.0",
        b"GET //x[/ HTTP/1.1",
        b"GET / HTTP/1.1 extra",
        b"GET /a b HTTP/1.1",
        b"get /v1/realtime HTTP/1.1",
        b"POST /v1/realtime HTTP/1.1",
        b"GET",
    ]
)


@given(_REQUEST_LINES, st.lists(_LINES, max_size=6), st.binary(max_size=4))
def test_a_plain_upgrade_is_one_the_full_parse_reads_as_an_upgrade_without_body(
    request_line: bytes, lines: list[bytes], after: bytes
) -> None:
    data = b"\r\n".join([request_line, *lines]) + b"\r\n\r\n" + after
    if is_plain_upgrade(data):
        request = parse_request(data)
        assert isinstance(request, HttpRequest)
        assert request.method == "GET" and request.body == b""
        assert (request.header("Upgrade") or "").lower() == "websocket"
