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
from collections.abc import Awaitable, Callable
from typing import Any, cast

from websockets.asyncio.server import ServerConnection

from ..admin import ADMIN_PREFIX
from ..responses import HttpResponse, error_response

__all__ = ["MAX_HEAD", "AdminHandler", "front_door"]

AdminHandler = Callable[[str, str], HttpResponse | Awaitable[HttpResponse]]
"""Answers one admin request: ``(method, target) -> response``, or an awaitable of
the response when answering needs I/O (asking the other workers: :mod:`.workers`)."""

MAX_HEAD = 64 * 1024
"""A request head longer than this is refused with 431 (the GA API takes far less)."""


def front_door(admin: AdminHandler) -> type[ServerConnection]:
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
            answer = _answer_head(bytes(self._head), admin)
            if answer is _INCOMPLETE:
                return
            head, self._head = bytes(self._head), None
            if answer is None:
                super().data_received(head)
                return
            if isinstance(answer, HttpResponse):
                self._answer(answer)
                return
            # Answered later; the task is kept here so it is not garbage-collected.
            self._later = asyncio.ensure_future(cast(Awaitable[HttpResponse], answer))
            self._later.add_done_callback(self._answer_later)

        def _answer_later(self, task: asyncio.Future[HttpResponse]) -> None:
            if task.cancelled():
                self._answer(error_response(503, "the server is stopping", "stopping"))
            elif task.exception() is not None:
                message = f"fakeupstream internal error: {task.exception()!r}"
                self._answer(error_response(500, message, "internal_error"))
            else:
                self._answer(task.result())

        def _answer(self, answer: HttpResponse) -> None:
            transport = self.transport
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(answer.encode())
            transport.close()

    return FrontDoorConnection


_INCOMPLETE = object()


def _answer_head(head: bytes, admin: AdminHandler) -> HttpResponse | object | None:
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
    request_line = head[: head.find(b"\r\n")].decode("latin-1")
    try:
        method, target, _version = request_line.split(" ", 2)
    except ValueError:
        return error_response(400, "malformed HTTP request line", "bad_request")
    if target.startswith(ADMIN_PREFIX):
        return admin(method, target)
    if method != "GET":
        return error_response(
            405,
            f"{method} is not supported here: open a WebSocket with GET",
            "bad_method",
            headers=(("Allow", "GET"),),
        )
    return None
