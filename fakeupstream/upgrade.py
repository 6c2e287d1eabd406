"""The upgrade request as the fake sees it, and where its path routes (sans-I/O).

A realtime connection starts with an HTTP upgrade request; the parts that matter
(path, query, headers, subprotocols) are kept in an :class:`UpgradeRequest`, and
:func:`route` tells whether the path is a realtime endpoint and which cassette,
if any, it names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from .redaction import KEY_SUBPROTOCOL, REDACTED, is_secret_header, is_secret_param
from .report import UpgradeSeen

__all__ = [
    "REALTIME_PATH",
    "Route",
    "UpgradeRequest",
    "query_pairs",
    "route",
    "split_cassette_prefix",
]

REALTIME_PATH = "/v1/realtime"
# A name may hold "/" (test_chat/test_reply): it runs up to the realtime endpoint.
_PREFIXED = re.compile(r"^/cassettes/(?P<name>[^/]+(?:/[^/]+)*?)(?P<rest>/v1/realtime/?)$")
# Any API path under a cassette prefix (the REST side): the name ends before "/v1/".
_PREFIXED_API = re.compile(r"^/cassettes/(?P<name>[^/]+(?:/[^/]+)*?)(?P<rest>/v1/.*)$")


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """The parts of a WebSocket upgrade request the fake looks at."""

    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    _first: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    """Each header name (lowercased) and its first value, made on the first lookup."""

    @classmethod
    def from_target(
        cls, target: str, headers: Sequence[tuple[str, str]], subprotocols: Sequence[str] = ()
    ) -> UpgradeRequest:
        """Build from a request target such as ``/v1/realtime?model=gpt-realtime``."""
        parts = urlsplit(target)
        return cls(
            path=parts.path,
            query=query_pairs(parts.query),
            headers=tuple(headers),
            subprotocols=tuple(subprotocols),
        )

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any letter case), or ``None``."""
        first = self._first
        if first is None:  # a connection asks several: each name is lowercased once
            first = {}
            for key, value in self.headers:
                first.setdefault(key.lower(), value)
            object.__setattr__(self, "_first", first)
        return first.get(name.lower())

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or ``None``."""
        for key, value in self.query:
            if key == name:
                return value
        return None

    def seen(self) -> UpgradeSeen:
        """What a report may keep of this request: everything but the credentials."""
        return UpgradeSeen(
            path=self.path,
            query=tuple(
                (name, REDACTED if is_secret_param(name) else value) for name, value in self.query
            ),
            headers=tuple(
                (name, REDACTED if is_secret_header(name) else value)
                for name, value in self.headers
            ),
            subprotocols=tuple(
                KEY_SUBPROTOCOL + REDACTED if protocol.startswith(KEY_SUBPROTOCOL) else protocol
                for protocol in self.subprotocols
            ),
        )

    def with_path(self, path: str) -> UpgradeRequest:
        """The same request seen at another path (after a cassette prefix is removed)."""
        if path == self.path:
            return self
        return UpgradeRequest(path, self.query, self.headers, self.subprotocols)


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: a cassette named in the path (or not) and the path after it."""

    cassette: str | None
    path: str


def route(path: str) -> Route | None:
    """Map a request path to a realtime route, or ``None`` when it is not one.

    ``/v1/realtime`` and ``/cassettes/<name>/v1/realtime`` are realtime routes,
    so a gateway whose upstream base URL is ``http://HOST:PORT/cassettes/<name>``
    selects the cassette by building its usual URL.
    """
    cassette = None
    found = _PREFIXED.match(path)
    if found is not None:
        cassette, path = found.group("name"), found.group("rest")
    if path.rstrip("/") != REALTIME_PATH:
        return None
    return Route(cassette, REALTIME_PATH)


def query_pairs(query: str) -> tuple[tuple[str, str], ...]:
    """The ``(name, value)`` pairs of a query string, blank values kept.

    The same pairs as ``parse_qsl(query, keep_blank_values=True)``; a query with
    nothing to decode (no ``%`` or ``+``, the common ``model=...``) is only split.
    """
    if "%" in query or "+" in query:
        return tuple(parse_qsl(query, keep_blank_values=True))
    pairs = (piece.partition("=") for piece in query.split("&") if piece)
    return tuple((name, value) for name, _, value in pairs)


def split_cassette_prefix(path: str) -> tuple[str | None, str]:
    """``(cassette, rest)`` for ``/cassettes/<cassette>/v1/...``; ``(None, path)`` otherwise."""
    found = _PREFIXED_API.match(path)
    if found is None:
        return None, path
    return found.group("name"), found.group("rest")
