"""The REST routes a realtime gateway forwards: ephemeral keys and WebRTC calls.

Browser and mobile apps never hold an API key: their backend mints an ephemeral
key (``POST /v1/realtime/client_secrets``) or creates a WebRTC call
(``POST /v1/realtime/calls``), through the gateway like the WebSocket. The gateway
forwards those requests to its upstream with the client's ``Authorization`` (or the
fallback key) and the configured upstream headers, never ``OpenAI-Beta``, and hands
the upstream's answer back byte for byte.

The gateway's port is served by ``websockets``, which parses only ``GET`` upgrade
requests; :func:`forwarding_connection` makes a connection class (documented
``create_connection`` of :func:`websockets.asyncio.server.serve`) whose asyncio
``data_received`` looks at the request head first: a forwarded route is taken
here, everything else goes on to ``websockets`` unchanged.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.server import ServerConnection

from proxy.config import ProxyConfig, resolve_authorization

__all__ = [
    "MAX_BODY",
    "ForwardRequest",
    "build_forward",
    "forwarded_path",
    "forwarding_connection",
    "parse_forward",
    "relay_http",
]

MAX_BODY = 8 * 1024 * 1024
"""The largest request body forwarded (an SDP offer or a session config is far smaller)."""
_MAX_HEAD = 64 * 1024

_FORWARDED = re.compile(
    r"^/v1/realtime/(client_secrets|translations/client_secrets|calls"
    r"|calls/[A-Za-z0-9_-]+/(accept|reject|refer|hangup))$"
)
# Client headers that describe the body; everything else is rebuilt or dropped.
_BODY_HEADERS = ("Content-Type", "Accept")


@dataclass(frozen=True)
class ForwardRequest:
    """A request to forward: where, and the exact bytes to send.

    ``repr`` hides the bytes: they carry the API key.
    """

    host: str
    port: int
    tls: bool
    data: bytes = field(repr=False)


def forwarded_path(method: str, path: str) -> bool:
    """Tell whether ``method path`` is a REST route the gateway forwards."""
    return method == "POST" and _FORWARDED.match(path) is not None


def parse_forward(head: bytes) -> tuple[str, str, list[tuple[str, str]], int] | bytes | None:
    """Look at a complete request head.

    Returns:
        ``None`` when the request is not forwarded (``websockets`` takes it), an
        HTTP response (bytes) refusing it, or ``(method, target, headers,
        content_length)``.
    """
    lines = head.decode("latin-1").split("\r\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.rpartition(" ")[0]
    try:
        path = urlsplit(target).path
    except ValueError:
        return None
    if not forwarded_path(method, path):
        return None
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.append((name.strip(), value.strip()))
    found = {name.lower(): value for name, value in headers}
    if "transfer-encoding" in found:
        return http_error(411, "length_required", "Send the body with a Content-Length.")
    length = found.get("content-length", "0")
    if not length.isdigit():
        return http_error(400, "bad_request", f"Invalid Content-Length {length!r}.")
    if int(length) > MAX_BODY:
        return http_error(413, "request_too_large", f"The body is over {MAX_BODY} bytes.")
    return method, target, headers, int(length)


def build_forward(
    config: ProxyConfig,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    environ: Mapping[str, str],
) -> ForwardRequest | bytes:
    """The upstream request for a forwarded route, or the 401 when there is no key.

    The upstream base's path prefix and query are kept, as for the WebSocket.
    """
    client = [value for name, value in headers if name.lower() == "authorization"]
    authorization = resolve_authorization(client[0] if client else None, config, environ)
    if authorization is None:
        return http_error(
            401,
            "missing_api_key",
            "Missing bearer authentication in header: send 'Authorization: Bearer <key>'.",
        )
    base = urlsplit(config.upstream)
    tls = base.scheme.lower() in ("https", "wss")
    port = base.port or (443 if tls else 80)
    wanted = urlsplit(target)
    query = "&".join(part for part in (base.query, wanted.query) if part)
    path = urlunsplit(("", "", base.path.rstrip("/") + wanted.path, query, ""))
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {base.netloc}",
        f"Authorization: {authorization}",
        *(
            f"{name}: {value}"
            for name, value in headers
            if name.lower() in {h.lower() for h in _BODY_HEADERS}
        ),
        *(f"{name}: {value}" for name, value in config.upstream_headers),
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    return ForwardRequest(base.hostname or "", port, tls, data)


def http_error(status: int, code: str, message: str) -> bytes:
    """An HTTP error response with the OpenAI error body, as bytes."""
    body = json.dumps(
        {
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": None,
            }
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {_PHRASES.get(status, 'Error')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


_PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    411: "Length Required",
    413: "Content Too Large",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}


async def relay_http(request: ForwardRequest, seconds: float) -> bytes:
    """Send ``request`` upstream and return its whole answer (the upstream closes after it).

    An upstream that cannot be reached gets 502, one that does not answer within
    ``seconds`` 504, in the OpenAI error shape.
    """
    context = ssl.create_default_context() if request.tls else None
    try:
        async with asyncio.timeout(seconds):
            reader, writer = await asyncio.open_connection(request.host, request.port, ssl=context)
            try:
                writer.write(request.data)
                await writer.drain()
                answer = await reader.read()
            finally:
                writer.close()
    except TimeoutError:
        return http_error(504, "upstream_timeout", f"The upstream did not answer in {seconds:g} s.")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return http_error(502, "upstream_unreachable", f"Could not reach the upstream: {reason}.")
    if not answer:
        return http_error(502, "upstream_unreachable", "The upstream closed without answering.")
    return answer


Forwarder = Callable[[str, str, list[tuple[str, str]], bytes, Any], None]
"""Takes ``(method, target, headers, body, transport)`` and answers on the transport."""


def forwarding_connection(
    forward: Forwarder, base: type[ServerConnection] = ServerConnection
) -> type[ServerConnection]:
    """A subclass of ``base`` that hands forwarded REST routes to ``forward``.

    Everything else goes on to ``base`` (e.g. one that screens the request line).
    """

    class ForwardingConnection(base):  # type: ignore[valid-type,misc]
        """A WebSocket server connection that first looks at the request head."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._buffer: bytearray | None = bytearray()  # None once decided
            self._wanted: tuple[str, str, list[tuple[str, str]], int] | None = None

        def data_received(self, data: bytes) -> None:
            if self._buffer is None:
                super().data_received(data)
                return
            self._buffer += data
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0 and len(self._buffer) <= _MAX_HEAD:
                return
            if self._wanted is None:
                parsed = None if end < 0 else parse_forward(bytes(self._buffer[:end]))
                if parsed is None:  # not ours: websockets parses it (and refuses a bad one)
                    buffered, self._buffer = bytes(self._buffer), None
                    super().data_received(buffered)
                    return
                if isinstance(parsed, bytes):
                    self._answer(parsed)
                    return
                self._wanted = parsed
            method, target, headers, length = self._wanted
            body = self._buffer[end + 4 :]
            if len(body) < length:
                return
            self._buffer = None
            forward(method, target, headers, bytes(body[:length]), self.transport)

        def _answer(self, response: bytes) -> None:
            self._buffer = None
            transport = self.transport
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(response)
            transport.close()

    return ForwardingConnection
