"""One port, two faces: HTTP admin requests answered here, WebSockets handed to ``websockets``.

``websockets`` parses only ``GET`` upgrade requests, and the admin API takes a
``POST``. So every connection's first bytes are read here until the request head
is complete: a request for ``/__fakeupstream/...`` (any method) is answered by the
sans-I/O admin handler, a method other than ``GET`` gets 405, and everything else
is passed on, byte for byte, to the ``websockets`` connection underneath.

This uses only documented ``websockets`` API, the same in versions 14 to 17:
:func:`websockets.asyncio.server.serve` takes ``create_connection``, "a wrapper or
a subclass" of :class:`~websockets.asyncio.server.ServerConnection`, and that class
is the connection's :class:`asyncio.Protocol`, whose ``data_received`` is
asyncio's documented callback. The subclass overrides only that callback, and
only until the request head has been seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection

from ..admin import ADMIN_PREFIX
from ..responses import HttpResponse, error_response

__all__ = ["MAX_HEAD", "AdminGuard", "AdminHandler", "front_door"]

AdminHandler = Callable[[str, str], HttpResponse]
"""Answers one admin request: ``(method, target) -> response``."""

AdminGuard = Callable[[str, list[tuple[str, str]]], HttpResponse | None]
"""Screens one admin request before it is answered: ``(target, headers) -> refusal``
(``None`` lets it through); e.g. a foreign ``Origin`` or ``Host``."""

MAX_HEAD = 64 * 1024
"""A request head longer than this is refused with 431 (the GA API takes far less)."""


def front_door(admin: AdminHandler, guard: AdminGuard | None = None) -> type[ServerConnection]:
    """A :class:`ServerConnection` subclass whose connections answer admin requests."""

    class FrontDoorConnection(ServerConnection):
        """A WebSocket server connection that first looks at the request head."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head: bytearray | None = bytearray()  # None once handed over

        def data_received(self, data: bytes) -> None:
            if self._head is None:
                super().data_received(data)
                return
            self._head += data
            answer = _answer_head(bytes(self._head), admin, guard)
            if answer is _INCOMPLETE:
                return
            head, self._head = bytes(self._head), None
            if answer is None:
                super().data_received(head)
                return
            assert isinstance(answer, HttpResponse)
            transport = self.transport
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(answer.encode())
            transport.close()

    return FrontDoorConnection


_INCOMPLETE = object()


def _headers(block: bytes) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of a request head's header lines (malformed ones skipped)."""
    pairs = []
    for line in block.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon and name and name == name.strip():
            pairs.append((name, value.strip()))
    return pairs


def _answer_head(
    head: bytes, admin: AdminHandler, guard: AdminGuard | None = None
) -> HttpResponse | object | None:
    """What to do with the bytes received so far.

    Returns:
        ``_INCOMPLETE`` to wait for more, ``None`` to hand the connection to
        ``websockets``, or the HTTP response to answer with.
    """
    end = head.find(b"\r\n\r\n")
    if end < 0:
        if len(head) > MAX_HEAD:
            return error_response(431, "request head too large", "head_too_large")
        return _INCOMPLETE
    raw_line = head[: head.find(b"\r\n")]
    if not raw_line.isascii():  # websockets would drop the connection without a word
        message = "the request line must be ASCII: percent-encode other bytes"
        return error_response(400, message, "invalid_request_target")
    request_line = raw_line.decode("latin-1")
    try:
        method, target, _version = request_line.split(" ", 2)
    except ValueError:
        return error_response(400, "malformed HTTP request line", "bad_request")
    if target.startswith(ADMIN_PREFIX):
        if guard is not None:
            refused = guard(target, _headers(head[len(raw_line) + 2 : end]))
            if refused is not None:
                return refused
        return admin(method, target)
    if method != "GET":
        return error_response(
            405,
            f"{method} is not supported here: open a WebSocket with GET",
            "bad_method",
            headers=(("Allow", "GET"),),
        )
    return None
