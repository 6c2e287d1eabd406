"""Send a burst of frames with one socket write instead of one per frame.

At speed 0 the replay engine hands over every frame that causality allows at
once: a whole streamed response, often dozens of ~200-byte events. Sent with
``ServerConnection.send()`` one by one, each frame is its own ``send(2)``
system call, which costs more CPU than everything else the fake does for it.
Here the frames are framed by the sans-I/O protocol (``protocol.send_text`` /
``send_binary``, which keeps framing and ordering right) and written with one
``transport.write`` per 64 KiB.

What needs ``websockets``' own care still goes through ``send()``: a
connection that is not OPEN (so the caller gets the proper
``ConnectionClosed``), and a socket that is not keeping up (``send()`` waits
for the write buffer to drain: that is the backpressure). Control frames that
``websockets`` writes itself (pongs, the close frame) go after the frames
already written, in order, because the protocol has a single output buffer.

``Connection.protocol`` is documented; ``Connection.transport`` is an attribute
of ``websockets`` 14 to 17 that its documentation does not list, so where it is
missing every frame goes through ``send()`` (``tests/serve/test_burst.py``
checks that the installed version takes the fast path).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from websockets.asyncio.connection import Connection
from websockets.protocol import State

__all__ = ["FLUSH_BYTES", "fast_path", "send_burst"]

FLUSH_BYTES = 64 * 1024
"""Write once this much is framed, so a burst of audio is never held whole in memory."""


def fast_path(connection: Connection) -> bool:
    """Tell whether ``connection`` exposes what :func:`send_burst` writes through."""
    transport = getattr(connection, "transport", None)
    protocol = getattr(connection, "protocol", None)
    kinds = (type(transport), type(protocol))
    known = _FAST_PATH.get(kinds)
    if known is None:  # worked out once per pair of classes, not once per burst
        known = _FAST_PATH[kinds] = isinstance(transport, asyncio.WriteTransport) and all(
            hasattr(protocol, name) for name in ("send_text", "send_binary", "data_to_send")
        )
    return known


_FAST_PATH: dict[tuple[type, type], bool] = {}


async def send_burst(connection: Connection, frames: Sequence[str | bytes]) -> None:
    """Send ``frames`` in order, each as one message, like ``send()`` for each would.

    Raises:
        ConnectionClosed: the connection closed before every frame was sent.
    """
    if len(frames) < 2 or not fast_path(connection):
        for frame in frames:
            await connection.send(frame)
        return
    protocol, transport = connection.protocol, connection.transport
    high_water = transport.get_write_buffer_limits()[1]
    framed = 0
    for frame in frames:
        if protocol.state is not State.OPEN or transport.get_write_buffer_size() > high_water:
            _write(connection)  # what is framed goes first: one output buffer
            framed = 0
            await connection.send(frame)  # raises ConnectionClosed, or waits to drain
            continue
        if isinstance(frame, str):
            protocol.send_text(frame.encode())
        else:
            protocol.send_binary(frame)
        framed += len(frame)
        if framed >= FLUSH_BYTES:
            _write(connection)
            framed = 0
    _write(connection)


def _write(connection: Connection) -> None:
    chunks = connection.protocol.data_to_send()
    if chunks:
        connection.transport.write(b"".join(chunks))
