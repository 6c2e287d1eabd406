"""The WebSocket wire as the lean load client needs it: no I/O, no asyncio, no clock.

A benchmark client must cost far less CPU than the server it loads, or on a
small machine it takes the core a second server worker would use. So this
module does only what a client of a known server needs (RFC 6455):

- the upgrade request, built once (a fixed ``Sec-WebSocket-Key`` is fine for a
  benchmark: the server's ``Sec-WebSocket-Accept`` is still checked), and the
  check of the server's answer (101 and the accept value; no extension may be
  negotiated, since none is offered);
- client frames, masked once when the run starts (a fixed mask key: masking
  protects proxies from a hostile page, not a concern on loopback);
- :class:`FrameParser`: server frames in, whole messages out: FIN, opcode and
  7-, 16- or 64-bit lengths; fragmented messages joined; control frames
  (close, ping, pong) delivered as they come, even between fragments; each
  with the stream offset of its first byte, so a client knows exactly whether
  it had arrived before a frame the client sent. Text is not checked for UTF-8.

Anything a server must not send (a masked frame, reserved bits, an unknown
opcode, a fragmented or long control frame, a stray continuation) raises
:class:`ProtocolError`.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "PING",
    "PONG",
    "TEXT",
    "Frame",
    "FrameParser",
    "HandshakeError",
    "ProtocolError",
    "accept_value",
    "check_upgrade",
    "client_frame",
    "close_payload",
    "parse_close",
    "upgrade_request",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DATA = frozenset({TEXT, BINARY})
_CONTROL = frozenset({CLOSE, PING, PONG})
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # the RFC's sample nonce: any 16 bytes, base64
MASK = b"\x37\xfa\x21\x3d"  # the RFC's sample mask key
MAX_HEAD = 64 * 1024
MAX_MESSAGE = 16 * 1024 * 1024


class ProtocolError(RuntimeError):
    """The server sent something RFC 6455 does not allow a server to send."""


class HandshakeError(RuntimeError):
    """The server did not accept the upgrade as a WebSocket server must."""


# A whole message (TEXT or BINARY, fragments joined) or a control frame:
# (opcode, payload, start), where start is the offset of its (first fragment's) first
# byte in the server's stream, counted from the first byte after the handshake. A plain
# tuple: a NamedTuple costs ten times as much to build, once per event.
Frame = tuple[int, bytes, int]


def accept_value(key: bytes = KEY) -> bytes:
    """The ``Sec-WebSocket-Accept`` a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def upgrade_request(host: str, port: int, target: str, headers: dict[str, str]) -> bytes:
    """The whole upgrade request for ``target`` (path and query), with ``headers`` added."""
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY.decode()}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def check_upgrade(head: bytes, accept: bytes) -> None:
    """Check the server's answer head (without its blank line) to the upgrade request.

    Raises:
        HandshakeError: not a 101, a wrong or missing accept value, or an extension.
    """
    status, *fields = head.split(b"\r\n")
    parts = status.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or parts[1] != b"101":
        raise HandshakeError(f"expected HTTP 101, got {status.decode(errors='replace')!r}")
    got: bytes | None = None
    for field in fields:
        name, _, value = field.partition(b":")
        name = name.strip().lower()
        if name == b"sec-websocket-accept":
            got = value.strip()
        elif name == b"sec-websocket-extensions":
            raise HandshakeError("the server negotiated an extension no client offered")
    if got != accept:
        raise HandshakeError(f"Sec-WebSocket-Accept {got!r}, expected {accept!r}")


def _mask(payload: bytes, key: bytes) -> bytes:
    """``payload`` XOR-ed with the repeated 4-byte ``key`` (done once per frame and run)."""
    if not payload:
        return payload
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return masked.to_bytes(len(payload), "big")


def client_frame(opcode: int, payload: bytes, *, key: bytes = MASK) -> bytes:
    """One final, masked client frame (a client must mask every frame it sends)."""
    length = len(payload)
    if length < 126:
        head = bytes([0x80 | opcode, 0x80 | length])
    elif length < 1 << 16:
        head = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    return head + key + _mask(payload, key)


def close_payload(code: int, reason: str = "") -> bytes:
    """A close frame's payload: the code, then the reason in UTF-8."""
    return code.to_bytes(2, "big") + reason.encode()


def parse_close(payload: bytes) -> tuple[int, str]:
    """A close frame's code and reason; 1005 (no status) for an empty payload.

    Raises:
        ProtocolError: a one-byte payload or a reason that is not UTF-8.
    """
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise ProtocolError("a close frame with a one-byte payload")
    try:
        return int.from_bytes(payload[:2], "big"), payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolError("a close reason that is not UTF-8") from None


class FrameParser:
    """Server bytes in, :class:`Frame` values out, in the order they arrived.

    Feed whatever the socket gave with :meth:`feed`, then call :meth:`next` until
    it returns ``None``. :attr:`received` counts the bytes fed so far: a frame whose
    ``start`` is below the count taken when the client sent something had (at least
    partly) arrived before that send.
    """

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.received = 0
        self._buffer = b""
        self._pos = 0
        self._offset = 0  # the stream offset of self._buffer[0]
        self._max = max_message
        self._fragments: list[bytes] | None = None
        self._fragmented = (TEXT, 0, 0)  # opcode, start, size so far

    def feed(self, data: bytes) -> None:
        """Add bytes received from the server."""
        self.received += len(data)
        if self._pos < len(self._buffer):
            self._buffer = self._buffer[self._pos :] + data
            self._offset += self._pos
        else:
            self._offset += len(self._buffer)
            self._buffer = data
        self._pos = 0

    def next(self) -> Frame | None:
        """The next whole message or control frame, or ``None`` until more bytes come.

        Raises:
            ProtocolError: the bytes break RFC 6455 for a server.
        """
        while True:
            buffer, pos = self._buffer, self._pos
            available = len(buffer) - pos
            if available < 2:
                return None
            first, length, head = buffer[pos], buffer[pos + 1], 2
            if length & 0x80:
                raise ProtocolError("a masked frame from the server")
            if length == 126:
                if available < 4:
                    return None
                length, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if available < 10:
                    return None
                length, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
            if length > self._max:
                raise ProtocolError(f"a frame of {length} bytes, over the {self._max} limit")
            if available < head + length:
                return None
            self._pos = end = pos + head + length
            start = self._offset + pos
            if (first == 0x81 or first == 0x82) and self._fragments is None:
                return first & 0x0F, buffer[pos + head : end], start  # the usual frame
            message = self._other(first, length, buffer[pos + head : end], start)
            if message is not None:
                return message

    def _other(self, first: int, length: int, payload: bytes, start: int) -> Frame | None:
        """Any frame but a whole text or binary message: check it, and join fragments."""
        if first & 0x70:
            raise ProtocolError("reserved bits set, and no extension was negotiated")
        fin, opcode = bool(first & 0x80), first & 0x0F
        if opcode in _CONTROL:
            if length > 125 or not fin:
                raise ProtocolError("a control frame that is fragmented or over 125 bytes")
            return opcode, payload, start
        return self._assemble(fin, opcode, payload, start)

    def _assemble(self, fin: bool, opcode: int, payload: bytes, start: int) -> Frame | None:
        """Join fragments: a whole message when one ends, else ``None``."""
        if opcode == CONTINUATION:
            if self._fragments is None:
                raise ProtocolError("a continuation frame with no message to continue")
            first_opcode, first_start, size = self._fragmented
            size += len(payload)
            if size > self._max:
                raise ProtocolError(f"a message over the {self._max}-byte limit")
            self._fragments.append(payload)
            self._fragmented = first_opcode, first_start, size
            if not fin:
                return None
            message = first_opcode, b"".join(self._fragments), first_start
            self._fragments = None
            return message
        if opcode not in _DATA:
            raise ProtocolError(f"unknown opcode {opcode:#x}")
        if self._fragments is not None:
            raise ProtocolError("a new message before the fragmented one ended")
        if fin:
            return opcode, payload, start
        self._fragments, self._fragmented = [payload], (opcode, start, len(payload))
        return None
