"""The lean client's wire (bench/lean_wire.py): bytes in, frames out, no sockets.

The byte strings marked "RFC" are the examples of RFC 6455, section 5.7.
"""

from __future__ import annotations

import re

import pytest
from lean_wire import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    Frame,
    FrameParser,
    HandshakeError,
    ProtocolError,
    accept_value,
    check_upgrade,
    client_frame,
    close_payload,
    parse_close,
    upgrade_request,
)

from .frames import server_frame, unmask

RFC_HELLO = bytes.fromhex("810548656c6c6f")
RFC_HEL_LO = bytes.fromhex("010348656c") + bytes.fromhex("80026c6f")
RFC_PING = bytes.fromhex("890548656c6c6f")


def frames_of(parser: FrameParser) -> list[Frame]:
    frames = []
    while (frame := parser.next()) is not None:
        frames.append(frame)
    return frames


def parse(data: bytes, *, max_message: int = 1 << 20) -> list[Frame]:
    parser = FrameParser(max_message)
    parser.feed(data)
    return frames_of(parser)


def parse_cut(data: bytes, cuts: list[int]) -> list[Frame]:
    """The same bytes fed in pieces, cut at ``cuts``, asking for frames after each."""
    parser = FrameParser()
    frames = []
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        parser.feed(data[start:end])
        frames += frames_of(parser)
    return frames


def parse_bytewise(data: bytes) -> list[Frame]:
    """The same bytes fed one at a time: a frame may end up cut anywhere."""
    return parse_cut(data, list(range(1, len(data))))


# -- the upgrade ----------------------------------------------------------------------


def test_the_accept_value_is_the_rfc_one_for_its_sample_key() -> None:
    assert accept_value() == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_the_upgrade_request_is_whole_and_carries_the_headers() -> None:
    request = upgrade_request("127.0.0.1", 8765, "/v1/realtime?model=m", {"Authorization": "x"})
    head, blank, rest = request.partition(b"\r\n\r\n")
    assert blank and not rest
    lines = head.split(b"\r\n")
    assert lines[0] == b"GET /v1/realtime?model=m HTTP/1.1"
    assert set(lines[1:]) == {
        b"Host: 127.0.0.1:8765",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version: 13",
        b"Authorization: x",
    }


ACCEPTED = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"


def test_a_101_with_the_right_accept_value_passes() -> None:
    check_upgrade(ACCEPTED + b"sec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", accept_value())


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0", "got 'HTTP/1.1 503 Service"),
        (b"garbage", "expected HTTP 101, got 'garbage'"),
        (ACCEPTED + b"Sec-WebSocket-Accept: AAAA", "Sec-WebSocket-Accept b'AAAA', expected"),
        (ACCEPTED.rstrip(), "Sec-WebSocket-Accept None, expected"),
        (
            ACCEPTED + b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate",
            "negotiated an extension",
        ),
    ],
)
def test_a_wrong_answer_to_the_upgrade_is_refused(head: bytes, message: str) -> None:
    with pytest.raises(HandshakeError, match=re.escape(message)):
        check_upgrade(head, accept_value())


# -- client frames --------------------------------------------------------------------


def test_a_client_frame_is_masked_as_in_the_rfc() -> None:
    assert client_frame(TEXT, b"Hello") == bytes.fromhex("818537fa213d7f9f4d5158")


@pytest.mark.parametrize(("size", "length_byte"), [(0, 0), (125, 125), (126, 126), (65535, 126),
                                                   (65536, 127)])  # fmt: skip
def test_client_frames_use_the_shortest_length_and_unmask_to_the_payload(
    size: int, length_byte: int
) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    first, second, unmasked = unmask(client_frame(BINARY, payload))
    assert (first, second) == (0x80 | BINARY, 0x80 | length_byte)
    assert unmasked == payload


def test_close_payloads_round_trip() -> None:
    assert close_payload(1000) == b"\x03\xe8"
    assert parse_close(close_payload(4000, "invalid_request_error.é")) == (
        4000,
        "invalid_request_error.é",
    )
    assert parse_close(b"") == (1005, "")


@pytest.mark.parametrize(
    ("payload", "message"), [(b"\x03", "one-byte"), (b"\x03\xe8\xff", "not UTF-8")]
)
def test_a_malformed_close_payload_is_a_protocol_error(payload: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_close(payload)


# -- the parser -----------------------------------------------------------------------


def test_the_rfc_examples_parse() -> None:
    assert parse(RFC_HELLO) == [(TEXT, b"Hello", 0)]
    assert parse(RFC_HEL_LO) == [(TEXT, b"Hello", 0)]
    assert parse(RFC_PING) == [(PING, b"Hello", 0)]
    assert parse(bytes.fromhex("8a05") + b"Hello") == [(PONG, b"Hello", 0)]


@pytest.mark.parametrize("size", [0, 125, 126, 256, 65535, 65536, 70000])
def test_7_16_and_64_bit_lengths_parse(size: int) -> None:
    payload = bytes(index % 251 for index in range(size))
    data = server_frame(BINARY, payload)
    assert len(data) - size == (2 if size < 126 else 4 if size < 65536 else 10)
    assert parse(data) == [(BINARY, payload, 0)]
    cut_in_the_head = [1, 2, 3, 5, 9, 11]
    assert parse_cut(data, [cut for cut in cut_in_the_head if cut < len(data)]) == [
        (BINARY, payload, 0)
    ]


def test_frames_cut_anywhere_parse_the_same_with_their_stream_offsets() -> None:
    data = RFC_HELLO + RFC_HEL_LO + RFC_PING + server_frame(TEXT, b"x" * 300)
    expected = [
        (TEXT, b"Hello", 0),
        (TEXT, b"Hello", 7),
        (PING, b"Hello", 16),
        (TEXT, b"x" * 300, 23),
    ]
    assert parse(data) == expected
    assert parse_bytewise(data) == expected


def test_a_control_frame_between_fragments_comes_first_and_the_message_keeps_its_start() -> None:
    data = (
        RFC_HELLO
        + server_frame(TEXT, b"Hel", fin=False)
        + RFC_PING
        + server_frame(0x0, b"l", fin=False)
        + server_frame(0x0, b"o")
    )
    expected = [(TEXT, b"Hello", 0), (PING, b"Hello", 12), (TEXT, b"Hello", 7)]
    assert parse(data) == expected
    assert parse_bytewise(data) == expected


def test_received_counts_every_byte_fed() -> None:
    parser = FrameParser()
    parser.feed(RFC_HELLO[:3])
    assert parser.next() is None
    parser.feed(RFC_HELLO[3:] + RFC_PING[:1])
    assert parser.received == 8
    assert parser.next() == (TEXT, b"Hello", 0)
    assert parser.next() is None


def test_a_close_frame_is_delivered() -> None:
    assert parse(server_frame(CLOSE, close_payload(1000, "bye"))) == [(CLOSE, b"\x03\xe8bye", 0)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes.fromhex("8185") + b"\x00" * 9, "masked frame"),
        (server_frame(TEXT, b"x", first_bits=0x40), "reserved bits"),
        (server_frame(TEXT, b"x", first_bits=0x10), "reserved bits"),
        (server_frame(0x3, b"x"), "unknown opcode 0x3"),
        (server_frame(0xB, b"x"), "unknown opcode 0xb"),
        (server_frame(PING, b"x", fin=False), "control frame that is fragmented"),
        (server_frame(CLOSE, b"x" * 126), "control frame that is fragmented or over 125"),
        (server_frame(0x0, b"lo"), "continuation frame with no message"),
        (server_frame(TEXT, b"a", fin=False) + RFC_HELLO, "new message before the fragmented"),
        (server_frame(BINARY, b"x" * 201), "a frame of 201 bytes, over the 200 limit"),
        (
            server_frame(TEXT, b"x" * 120, fin=False) + server_frame(0x0, b"x" * 120),
            "a message over the 200-byte limit",
        ),
        (bytes([0x82, 127]) + (1 << 63).to_bytes(8, "big"), "over the 200 limit"),
    ],
)
def test_what_a_server_must_not_send_is_a_protocol_error(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(message)):
        parse(data, max_message=200)
