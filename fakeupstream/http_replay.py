"""Recorded HTTP exchanges played back: which one answers a request, and as what (sans-I/O).

Requests are matched the way connections are: on the method and the path (after any
cassette prefix; the query and the body are not compared), and the n-th request for
a method and path gets the n-th exchange recorded for them. Once those are used up,
the last one answers again, as the last episode of a cassette serves every later
connection. The count starts again when the server's reports are reset.
"""

from __future__ import annotations

import json

from .cassette import Cassette, HttpBody, HttpExchange
from .responses import HttpResponse

__all__ = ["HttpPlayback", "body_bytes", "recorded_response"]


class HttpPlayback:
    """How far one server has played each cassette's HTTP exchanges."""

    def __init__(self) -> None:
        self._used: dict[tuple[str, str, str], int] = {}

    def reset(self) -> None:
        """Start every cassette's exchanges from the first again."""
        self._used.clear()

    def take(self, cassette: Cassette, method: str, path: str) -> HttpExchange | None:
        """The exchange that answers ``method path``, or ``None`` when none was recorded.

        Args:
            cassette: the selected cassette.
            method: the request method.
            path: the request path after any cassette prefix, without the query.
        """
        route = path.rstrip("/") or "/"
        matching = [x for x in cassette.http if x.method == method and x.route == route]
        if not matching:
            return None
        key = (cassette.name, method, route)
        used = self._used.get(key, 0)
        self._used[key] = used + 1
        return matching[min(used, len(matching) - 1)]


def body_bytes(body: HttpBody) -> bytes:
    """A kept body as it goes on the wire: JSON compact, text as UTF-8, none as nothing."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def recorded_response(exchange: HttpExchange, body: HttpBody) -> HttpResponse:
    """The answer to replay for ``exchange``, with ``body`` (its recorded body, moved in time).

    A JSON body gets ``Content-Type: application/json`` when the recording kept none.
    """
    headers = exchange.response_headers
    if isinstance(body, dict | list) and not any(
        name.lower() == "content-type" for name, _ in headers
    ):
        headers = (("content-type", "application/json"), *headers)
    return HttpResponse(exchange.status, body_bytes(body), headers)
