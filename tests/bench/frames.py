"""Server frames built by hand, as a server puts them on the wire (unmasked)."""

from __future__ import annotations

TEXT, BINARY, CLOSE, PING = 0x1, 0x2, 0x8, 0x9


def server_frame(opcode: int, payload: bytes, *, fin: bool = True, first_bits: int = 0) -> bytes:
    """One unmasked frame; ``first_bits`` is OR-ed into the first byte (the RSV bits)."""
    first = (0x80 if fin else 0) | first_bits | opcode
    length = len(payload)
    if length < 126:
        head = bytes([first, length])
    elif length < 1 << 16:
        head = bytes([first, 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([first, 127]) + length.to_bytes(8, "big")
    return head + payload


def text(payload: str) -> bytes:
    return server_frame(TEXT, payload.encode())


def unmask(frame: bytes) -> tuple[int, int, bytes]:
    """A client frame's first byte, its mask bit and length byte, and its unmasked payload."""
    length, offset = frame[1] & 0x7F, 2
    if length == 126:
        length, offset = int.from_bytes(frame[2:4], "big"), 4
    elif length == 127:
        length, offset = int.from_bytes(frame[2:10], "big"), 10
    key, masked = frame[offset : offset + 4], frame[offset + 4 :]
    assert len(masked) == length
    return frame[0], frame[1], bytes(byte ^ key[i % 4] for i, byte in enumerate(masked))
