"""Answer a request line ``websockets`` cannot parse, instead of dropping the connection.

``websockets`` reads the request target as ASCII; a raw non-ASCII byte in it (a
client that forgot to percent-encode a query value) makes it close the TCP
connection without a word. This connection class looks at the request line first:
when it is not ASCII, the client gets 400 with the OpenAI error body; otherwise the
bytes go on to ``websockets`` unchanged.

Only documented ``websockets`` API is used (14 to 17): ``serve(create_connection=...)``
takes a :class:`~websockets.asyncio.server.ServerConnection` subclass, which is the
connection's :class:`asyncio.Protocol`; this one overrides asyncio's
``data_received`` callback until the request line has been seen.
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.server import ServerConnection

from proxy.handshake import error_response

__all__ = ["MAX_REQUEST_LINE", "ScreeningConnection"]

MAX_REQUEST_LINE = 16 * 1024
"""Bytes read while looking for the end of the request line; then ``websockets`` judges."""


class ScreeningConnection(ServerConnection):
    """A server connection that refuses a non-ASCII request line with 400."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._line: bytearray | None = bytearray()  # None once handed over

    def data_received(self, data: bytes) -> None:
        """Hold the first bytes until the request line is complete, then decide."""
        if self._line is None:
            super().data_received(data)
            return
        self._line += data
        end = self._line.find(b"\r\n")
        if end < 0 and len(self._line) < MAX_REQUEST_LINE:
            return
        received, self._line = bytes(self._line), None
        if end >= 0 and not received[:end].isascii():
            self._refuse()
            return
        super().data_received(received)

    def _refuse(self) -> None:
        response = error_response(
            400,
            "invalid_request_error",
            "invalid_request_target",
            "The request line must be ASCII: percent-encode other bytes.",
        )
        head = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
        head += [f"{name}: {value}" for name, value in response.headers.raw_items()]
        transport = self.transport
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
        transport.close()
