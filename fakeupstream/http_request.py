"""A plain HTTP/1.1 request read from bytes: its head, then its body (sans-I/O).

The front door feeds the bytes received so far to :func:`parse_request` until it
returns a complete :class:`HttpRequest` or an error response. Bodies come with
``Content-Length`` or ``Transfer-Encoding: chunked`` (what SDKs and gateways send),
up to :data:`MAX_BODY`; anything else gets the HTTP answer a server gives (400, 411,
413, 501), never a hang.

The recorder reads the upstream's answers to the requests it forwards the same way
(:func:`parse_response`), with the same body reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .responses import HttpResponse, error_response

__all__ = [
    "INCOMPLETE",
    "MAX_BODY",
    "HttpRequest",
    "Incomplete",
    "complete_size",
    "is_plain_upgrade",
    "parse_request",
    "parse_response",
]

MAX_BODY = 32 * 1024 * 1024
"""The largest request body read (an SDP offer or a session config is far smaller)."""


class Incomplete:
    """More bytes are needed."""

    def __repr__(self) -> str:
        return "INCOMPLETE"


INCOMPLETE = Incomplete()


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request: method, target (path and query), headers in order, and body."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @property
    def path(self) -> str:
        """The target's path, without the query (the target was checked when parsed)."""
        return urlsplit(self.target).path

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any letter case), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


def parse_request(
    data: bytes, *, max_body: int = MAX_BODY
) -> HttpRequest | HttpResponse | Incomplete:
    """Parse one request from ``data``, whose head is complete (it holds ``\\r\\n\\r\\n``).

    Returns:
        the request, an error response to answer with, or :data:`INCOMPLETE` when
        the body has not all arrived yet.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return INCOMPLETE
    lines = data[:end].decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        return error_response(400, "malformed HTTP request line", "bad_request")
    try:
        urlsplit(target)
    except ValueError as exc:  # e.g. an unbalanced "[" in the authority
        message = f"malformed request target: {exc}"
        return error_response(400, message, "invalid_request_target")
    headers = []
    framing: dict[str, str] = {}  # the first Transfer-Encoding and Content-Length
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            return error_response(400, f"malformed header line {line!r}", "bad_request")
        value = value.strip()
        headers.append((name, value))
        lowered = name.lower()
        if lowered in _FRAMING:
            framing.setdefault(lowered, value)
    rest = data[end + 4 :]
    encoding = framing.get("transfer-encoding", "").strip().lower()
    if encoding:
        if encoding != "chunked":
            message = f"Transfer-Encoding {encoding!r} is not supported: use chunked"
            return error_response(501, message, "unsupported_transfer_encoding")
        body = _dechunk(rest, max_body)
    else:
        body = _sized(framing.get("content-length"), rest, max_body)
    if isinstance(body, bytes):
        return HttpRequest(method, target, tuple(headers), body)
    return body


_FRAMING = ("transfer-encoding", "content-length")


# A GET whose head parse_request accepts as it is, with no body: a path target that
# urlsplit cannot refuse, token header names (never blank-edged), values without line
# breaks, and no framing header. Anything else takes the full parse.
_PLAIN_GET_HEAD = re.compile(
    rb"GET /(?!/)[!-~]* HTTP/1\.1\r\n"
    rb"(?:(?!(?i:transfer-encoding|content-length):)[-!#$%&'*+.^_`|~0-9A-Za-z]+:[^\r\n]*\r\n)*"
    rb"\r\n"
)
_UPGRADE_HEADER = re.compile(rb"\r\n(?i:upgrade):([^\r\n]*)\r\n")


def is_plain_upgrade(data: bytes) -> bool:
    """Tell, without parsing it, that ``data`` starts with a WebSocket upgrade request
    :func:`parse_request` would read with no error and no body (what clients send).

    ``False`` says nothing: the request may still be an upgrade, to be parsed in full.
    """
    end = data.find(b"\r\n\r\n") + 4
    if end < 4 or _PLAIN_GET_HEAD.fullmatch(data, 0, end) is None:
        return False
    upgrade = _UPGRADE_HEADER.search(data, 0, end)  # the first Upgrade header counts
    return upgrade is not None and upgrade[1].strip().lower() == b"websocket"


def parse_response(
    data: bytes, *, eof: bool, max_body: int = MAX_BODY
) -> HttpResponse | Incomplete:
    """Read an upstream's answer from ``data``, the bytes received so far.

    Args:
        data: the bytes received.
        eof: the upstream has closed: a body with neither length nor chunks ends here.
        max_body: the largest body read.

    Returns:
        the response (its headers as sent, ``Content-Length`` and framing included),
        or :data:`INCOMPLETE` when more bytes are needed.

    Raises:
        ValueError: the bytes are not an HTTP response, or the body is too large.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if eof:
            raise ValueError("the upstream closed before the end of its answer's head")
        return INCOMPLETE
    lines = data[:end].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest.partition(" ")[0]
    if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit():
        raise ValueError(f"the upstream's answer is not HTTP: {lines[0][:40]!r}")
    headers = tuple(
        (name.strip(), value.strip())
        for name, colon, value in (line.partition(":") for line in lines[1:])
        if colon
    )
    found = {name.lower(): value for name, value in headers}
    rest_bytes = data[end + 4 :]
    if found.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(rest_bytes, max_body)
    elif "content-length" in found:
        body = _sized(found["content-length"], rest_bytes, max_body)
    elif len(rest_bytes) > max_body:
        body = _too_large(max_body)
    else:  # the body runs to the end of the connection
        body = rest_bytes if eof else INCOMPLETE
    if isinstance(body, HttpResponse):
        raise ValueError(f"the upstream's answer has a bad body: {body.body.decode()}")
    if isinstance(body, Incomplete):
        if eof:
            raise ValueError("the upstream closed before the end of its answer's body")
        return INCOMPLETE
    return HttpResponse(int(code), body, headers)


def complete_size(data: bytes) -> int | None:
    """How many bytes the request in ``data`` takes, when its head says (``Content-Length``).

    ``None`` while the head is incomplete, and for a chunked body (its end is seen, not
    announced). A reader waits for this many bytes before parsing again, so a large
    body is parsed once, not once per read.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    length = None
    for line in data[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = value.strip()
    return end + 4 + (int(length) if length is not None and length.isdigit() else 0)


def _too_large(max_body: int) -> HttpResponse:
    return error_response(413, f"request body larger than {max_body} bytes", "request_too_large")


def _sized(length: str | None, rest: bytes, max_body: int) -> bytes | HttpResponse | Incomplete:
    if length is None:
        return b""  # no body (a GET, or a POST without one)
    if not length.strip().isdigit():
        return error_response(400, f"invalid Content-Length {length!r}", "bad_request")
    size = int(length)
    if size > max_body:
        return _too_large(max_body)
    if len(rest) < size:
        return INCOMPLETE
    return rest[:size]


def _dechunk(data: bytes, max_body: int) -> bytes | HttpResponse | Incomplete:
    """The body of a chunked request, once its last (zero-size) chunk has arrived."""
    body = bytearray()
    position = 0
    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return INCOMPLETE if len(data) - position < 1024 else _bad_chunk()
        size_text = data[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return _bad_chunk()
        if size < 0:
            return _bad_chunk()
        if len(body) + size > max_body:
            return _too_large(max_body)
        start = line_end + 2
        if size == 0:
            # The last chunk, then trailer lines (rare, ignored) and an empty line.
            done = data[start : start + 2] == b"\r\n" or data.find(b"\r\n\r\n", start) >= 0
            return bytes(body) if done else INCOMPLETE
        if len(data) < start + size + 2:
            return INCOMPLETE
        if data[start + size : start + size + 2] != b"\r\n":
            return _bad_chunk()
        body += data[start : start + size]
        position = start + size + 2


def _bad_chunk() -> HttpResponse:
    return error_response(400, "malformed chunked request body", "bad_request")
