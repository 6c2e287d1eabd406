"""One port, two faces: HTTP admin requests answered here, WebSockets handed to ``websockets``.

``websockets`` parses only ``GET`` upgrade requests, and the admin API takes a
``POST``. So every connection's first bytes are read here until the request head
is complete: a request for ``/__fakeupstream/...`` (any method) is answered by the
sans-I/O admin handler; a request that is not a WebSocket upgrade has its body read
and goes to the REST side (models, client secrets, calls), and gets a logged 404 when
nobody serves its path; a method other than ``GET`` gets 405, and everything else is
passed on, byte for byte, to the ``websockets`` connection underneath. A TLS
ClientHello on a plain port is closed at once, with a one-line hint in the log.

This uses only documented ``websockets`` API, the same in versions 14 to 17:
:func:`websockets.asyncio.server.serve` takes ``create_connection``, "a wrapper or
a subclass" of :class:`~websockets.asyncio.server.ServerConnection`, and that class
is the connection's :class:`asyncio.Protocol`, whose ``data_received`` is
asyncio's documented callback. The subclass overrides only that callback, and
only until the request (head, and body for the REST side) has been seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from websockets.asyncio.server import ServerConnection

from ..admin import ADMIN_PREFIX
from ..http_request import (
    INCOMPLETE,
    MAX_BODY,
    HttpRequest,
    complete_size,
    is_plain_upgrade,
    parse_request,
)
from ..redaction import redact_target
from ..responses import HttpResponse, error_response
from ..upgrade import route, split_cassette_prefix

__all__ = [
    "MAX_HEAD",
    "TLS_HINT",
    "AdminGuard",
    "AdminHandler",
    "FrontDoorConnection",
    "Handlers",
    "RestHandler",
    "front_door",
]

AdminHandler = Callable[[str, str], HttpResponse | Awaitable[HttpResponse]]
"""Answers one admin request: ``(method, target) -> response``, or an awaitable of
the response when answering needs I/O (asking the other workers: :mod:`.workers`)."""

RestHandler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse] | None]
"""Answers a plain HTTP request (body read) on a REST route, or an awaitable of the
answer when it needs I/O (recording forwards it upstream); ``None`` when it is not one."""

logger = logging.getLogger("fakeupstream.front_door")

TLS_HINT = "this client speaks TLS: start with --tls"
"""Logged when a TLS ClientHello reaches a plain port (the client would hang otherwise)."""

AdminGuard = Callable[[str, list[tuple[str, str]]], HttpResponse | None]
"""Screens one admin request before it is answered: ``(target, headers) -> refusal``
(``None`` lets it through); e.g. a foreign ``Origin`` or ``Host``."""

LostHandler = Callable[[ServerConnection], None]
"""Told of each connection whose TCP connection ended (a callback: no task per connection)."""

MAX_HEAD = 64 * 1024
"""A request head longer than this is refused with 431 (the GA API takes far less)."""


def front_door(
    admin: AdminHandler,
    rest: RestHandler | None = None,
    guard: AdminGuard | None = None,
    lost: LostHandler | None = None,
) -> type[ServerConnection]:
    """A :class:`ServerConnection` subclass whose connections answer admin requests.

    With ``rest``, a request that is not a WebSocket upgrade has its body read
    (``Content-Length`` or chunked, up to :data:`~fakeupstream.http_request.MAX_BODY`)
    and goes to ``rest``; what ``rest`` does not answer, outside the realtime
    endpoint, gets a 404 and one log line. With ``guard``, an admin request it
    refuses (a browser's origin, a rebindable ``Host``) gets its answer instead.
    With ``lost``, every connection is passed to it once its TCP connection ends
    (whether or not it got as far as a WebSocket handler).
    """

    handlers = Handlers(admin, rest, guard, lost)
    return type("FrontDoorConnection", (FrontDoorConnection,), {"handlers": handlers})


@dataclass(frozen=True, slots=True)
class Handlers:
    """Where a front door sends what it answers itself."""

    admin: AdminHandler
    rest: RestHandler | None = None
    guard: AdminGuard | None = None
    lost: LostHandler | None = None


class FrontDoorConnection(ServerConnection):
    """A WebSocket server connection that first looks at the request head.

    :func:`front_door` makes the subclass that knows where admin and REST requests go.
    """

    handlers: ClassVar[Handlers]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head: bytearray | None = bytearray()  # None once handed over
        # Once the head is read: parse again at this size (Content-Length), or, for
        # a chunked body (-1), when the bytes end like a last chunk. A body arriving
        # in many reads is then parsed once, not once per read.
        self._look_at = 0

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            super().data_received(data)
            return
        if not self._head and data[:1] == _TLS_HANDSHAKE:
            # A TLS ClientHello on a plain port: no HTTP answer can help, so close
            # at once instead of waiting for a request head that never comes.
            self._head = None
            logger.warning("%s", TLS_HINT)
            transport = self.transport
            assert isinstance(transport, asyncio.WriteTransport)
            transport.close()
            return
        self._head += data
        if not self._worth_parsing():
            return
        h = self.handlers
        answer = _answer_head(bytes(self._head), h.admin, h.rest, h.guard)
        if answer is _INCOMPLETE:
            if self._head.find(b"\r\n\r\n") >= 0:
                size = complete_size(bytes(self._head))
                self._look_at = -1 if size is None else size
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

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.handlers.lost is not None:
            self.handlers.lost(self)

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

    def _worth_parsing(self) -> bool:
        assert self._head is not None
        if self._look_at >= 0:
            return len(self._head) >= self._look_at
        # Chunked: the last chunk ends with an empty line; past the limit, say 413.
        return self._head.endswith(b"\r\n\r\n") or len(self._head) > MAX_BODY + MAX_HEAD


_INCOMPLETE = object()
_TLS_HANDSHAKE = b"\x16"  # TLS record type 22 (handshake); no HTTP method starts with it


def _headers(block: bytes) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of a request head's header lines (malformed ones skipped)."""
    pairs = []
    for line in block.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon and name and name == name.strip():
            pairs.append((name, value.strip()))
    return pairs


def _answer_head(
    head: bytes,
    admin: AdminHandler,
    rest: RestHandler | None = None,
    guard: AdminGuard | None = None,
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
    if rest is not None and not is_plain_upgrade(head):
        request = parse_request(head)
        if request is INCOMPLETE:
            return _INCOMPLETE
        if isinstance(request, HttpResponse):
            return request
        assert isinstance(request, HttpRequest)
        if (request.header("Upgrade") or "").lower() != "websocket":
            answer = rest(request)
            if answer is not None:
                return answer
            if route(request.path) is None:
                # Gateways probe paths the fake does not serve (/loads, /health): say so
                # once in the log, and answer like the API does for an unknown route.
                logger.info("no route for %s %s: 404", method, redact_target(target))
                _, path = split_cassette_prefix(request.path)
                return error_response(404, f"Invalid URL ({method} {path})", "not_found")
    if method != "GET":
        return error_response(
            405,
            f"{method} is not supported here: open a WebSocket with GET",
            "bad_method",
            headers=(("Allow", "GET"),),
        )
    return None
