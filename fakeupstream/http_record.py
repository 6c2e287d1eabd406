"""A REST request being recorded: what goes upstream, and what is kept (sans-I/O).

The recorder forwards the realtime REST routes (client secrets, calls, models) to
the upstream it records against, with its own key and never the client's, and
passes the answer back. It keeps one :class:`~fakeupstream.cassette.HttpExchange`
per request:

- the method and the path after any cassette prefix, key-bearing query parameters
  masked; no request header at all;
- the status, and of the response headers only those replay needs
  (:data:`KEPT_HEADERS`);
- both bodies, as JSON when they hold a JSON object or list, else as text;

everything through the :class:`~fakeupstream.redaction.Redactor`: the keys in use
are replaced, and every ``ek_...`` value becomes ``ek_REDACTED``, which replay turns
into a fresh key. The real ``ek_`` values are remembered (:class:`MintedKeys`) so the
socket that presents one is opened upstream with it, as live.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .cassette import HttpBody, HttpExchange
from .http_request import HttpRequest
from .redaction import Redactor, ephemeral_keys, is_secret_header, is_secret_param, redact_target
from .responses import HttpResponse
from .upgrade import REALTIME_PATH, split_cassette_prefix

__all__ = [
    "KEPT_HEADERS",
    "NOT_FORWARDED",
    "PASSED_BACK",
    "MintedKeys",
    "UpstreamRequest",
    "http_body",
    "passed_back",
    "recorded_exchange",
    "unprefixed_target",
    "upstream_request",
]

NOT_FORWARDED = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "authorization",
        "cookie",
    }
)
"""Client headers never sent upstream: the hop's own framing, the handshake's, and
credentials (the recorder authenticates itself)."""
# Also kept back from a forwarded REST request: the answer must come uncompressed (it
# is recorded), and its body is sent at once.
_NOT_FORWARDED_HTTP = NOT_FORWARDED | {"accept-encoding", "expect"}
KEPT_HEADERS = ("content-type", "location")
"""The response headers a recorded exchange keeps (a call's ``Location`` names it)."""
PASSED_BACK = ("Content-Type", "Location", "Retry-After", "WWW-Authenticate")
"""The upstream's response headers passed to the client (framing is the fake's own)."""
_MAX_MINTED = 10_000


@dataclass(frozen=True)
class UpstreamRequest:
    """A REST request to send upstream: where, and the exact bytes (``repr`` hides them:
    they carry the key)."""

    host: str
    port: int
    tls: bool
    data: bytes = field(repr=False)


def unprefixed_target(target: str) -> str:
    """``target`` without its ``/cassettes/<name>`` prefix, query kept."""
    path, question, query = target.partition("?")
    return split_cassette_prefix(path)[1] + question + query


def upstream_request(upstream: str, request: HttpRequest, key: str) -> UpstreamRequest:
    """The request sent upstream for a client's REST request.

    The REST routes live on the upstream's host under the path before its
    ``/v1/realtime`` (``wss://api.openai.com/v1/realtime`` → ``https://api.openai.com``);
    the upstream's query comes first, then the client's without key-bearing
    parameters. The client's headers go on except credentials and framing.

    Args:
        upstream: the realtime URL recorded against (``ws(s)://`` or ``http(s)://``).
        request: the client's request, body read.
        key: the recorder's key, sent as ``Authorization: Bearer``.
    """
    base = urlsplit(upstream)
    tls = base.scheme.lower() in ("https", "wss")
    root = base.path.rstrip("/")
    for suffix in (REALTIME_PATH, "/realtime"):
        if root.endswith(suffix):
            root = root.removesuffix(suffix)
            break
    wanted = urlsplit(unprefixed_target(request.target))
    pairs = parse_qsl(base.query, keep_blank_values=True) + [
        (name, value)
        for name, value in parse_qsl(wanted.query, keep_blank_values=True)
        if not is_secret_param(name)
    ]
    target = root + wanted.path + (f"?{urlencode(pairs, safe='/:')}" if pairs else "")
    lines = [
        f"{request.method} {target} HTTP/1.1",
        f"Host: {base.netloc.rpartition('@')[2]}",
        f"Authorization: Bearer {key}",
        *(
            f"{name}: {value}"
            for name, value in request.headers
            if name.lower() not in _NOT_FORWARDED_HTTP and not is_secret_header(name)
        ),
        f"Content-Length: {len(request.body)}",
        "Connection: close",
    ]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body
    return UpstreamRequest(base.hostname or "", base.port or (443 if tls else 80), tls, data)


def http_body(data: bytes) -> HttpBody:
    """A body as a cassette keeps it: a JSON object or list parsed, anything else as text."""
    if not data:
        return None
    text = data.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text
    return parsed if isinstance(parsed, dict | list) else text


def recorded_exchange(
    request: HttpRequest, answer: HttpResponse, redactor: Redactor
) -> HttpExchange:
    """The exchange kept for ``request`` and the upstream's ``answer``, redacted."""
    kept = tuple(
        (name.lower(), redactor.text(value))
        for name, value in answer.headers
        if name.lower() in KEPT_HEADERS
    )
    path = redactor.text(redact_target(unprefixed_target(request.target)))
    return HttpExchange(
        method=request.method,
        path=path,
        status=answer.status,
        request_body=redactor.value(http_body(request.body)),
        response_body=redactor.value(http_body(answer.body)),
        response_headers=kept,
    )


def passed_back(answer: HttpResponse) -> HttpResponse:
    """The upstream's answer as the client gets it: status and body as they came."""
    wanted = {name.lower() for name in PASSED_BACK}
    headers = tuple((name, value) for name, value in answer.headers if name.lower() in wanted)
    return HttpResponse(answer.status, answer.body, headers)


class MintedKeys:
    """The ``ek_`` keys an upstream minted through this recorder (the newest 10,000).

    A socket that presents one is opened upstream with it, so the live session starts
    from the config the key was minted for; any other client key never goes upstream.
    """

    def __init__(self) -> None:
        self._keys: dict[str, None] = {}

    def add_from(self, answer: HttpResponse) -> list[str]:
        """Remember the keys in ``answer``'s body; return them (secrets for the leak guard)."""
        found = ephemeral_keys(answer.body.decode("utf-8", errors="replace"))
        for key in found:
            self._keys[key] = None
        while len(self._keys) > _MAX_MINTED:
            del self._keys[next(iter(self._keys))]
        return found

    def __contains__(self, key: object) -> bool:
        return key in self._keys


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
