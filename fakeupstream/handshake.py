"""Decide how an upgrade request is answered, before any frame is exchanged.

Sans-I/O: it takes the request (path, query, headers, subprotocols) and the
cassette, and returns a decision. The GA API accepts every upgrade (HTTP 101)
and reports handshake-time failures as one ``error`` event followed by a close;
a cassette may also refuse with an HTTP status, as some gateways do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias
from urllib.parse import parse_qsl, urlsplit

from .cassette import CloseStep, Condition, Direction, Expectation, FrameStep, Handshake, Step
from .ga import AUTH_CLOSE, MISSING_MODEL_CLOSE, EventIds, missing_auth_error, missing_model_error
from .redaction import KEY_SUBPROTOCOL

__all__ = [
    "REALTIME_PATH",
    "Answer",
    "Decision",
    "Refuse",
    "Replay",
    "Route",
    "UpgradeRequest",
    "condition_holds",
    "decide",
    "expectation_differences",
    "has_credentials",
    "route",
]

REALTIME_PATH = "/v1/realtime"
_PREFIXED = re.compile(r"^/cassettes/(?P<name>[^/]+)(?P<rest>/.*)$")


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """The parts of a WebSocket upgrade request the fake looks at."""

    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()

    @classmethod
    def from_target(
        cls, target: str, headers: Sequence[tuple[str, str]], subprotocols: Sequence[str] = ()
    ) -> UpgradeRequest:
        """Build from a request target such as ``/v1/realtime?model=gpt-realtime``."""
        parts = urlsplit(target)
        return cls(
            path=parts.path,
            query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
            headers=tuple(headers),
            subprotocols=tuple(subprotocols),
        )

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any letter case), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or ``None``."""
        for key, value in self.query:
            if key == name:
                return value
        return None

    def with_path(self, path: str) -> UpgradeRequest:
        """The same request seen at another path (after a cassette prefix is removed)."""
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


@dataclass(frozen=True, slots=True)
class Refuse:
    """Refuse the upgrade: HTTP ``status`` with a JSON ``body``."""

    status: int
    body: object
    headers: tuple[tuple[str, str], ...] = ()
    why: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """Accept, play ``steps`` (server frames ending with a close), and stop."""

    steps: tuple[Step, ...]
    why: str


@dataclass(frozen=True, slots=True)
class Replay:
    """Accept and replay the cassette timeline; ``differences`` are reported as mismatches."""

    differences: tuple[str, ...] = field(default=())


Decision: TypeAlias = Refuse | Answer | Replay


def condition_holds(condition: Condition, request: UpgradeRequest) -> bool:
    """Tell whether every part of ``condition`` holds for ``request``."""
    if condition.path is not None and condition.path != request.path:
        return False
    if any(request.header(name) is None for name in condition.header):
        return False
    if any(request.header(name) != value for name, value in condition.header_equals):
        return False
    if any(request.header(name) is not None for name in condition.missing_header):
        return False
    if any(request.param(name) != value for name, value in condition.query):
        return False
    return all(request.param(name) is None for name in condition.missing_query)


def expectation_differences(expect: Expectation, request: UpgradeRequest) -> list[str]:
    """List how ``request`` differs from what the cassette expects of it."""
    found = []
    if expect.path is not None and expect.path != request.path:
        found.append(f"path: expected {expect.path!r}, got {request.path!r}")
    for name, value in expect.query:
        actual = request.param(name)
        if actual != value:
            found.append(f"query {name}: expected {value!r}, got {actual!r}")
    for name, value in expect.headers:
        actual = request.header(name)
        if actual != value:
            found.append(f"header {name}: expected {value!r}, got {actual!r}")
    return found


def has_credentials(request: UpgradeRequest) -> bool:
    """Tell whether the request carries a key the way the GA API accepts one."""
    authorization = (request.header("Authorization") or "").strip()
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() in ("bearer", "basic") and credentials.strip():
        return True
    return any(
        protocol.startswith(KEY_SUBPROTOCOL) and len(protocol) > len(KEY_SUBPROTOCOL)
        for protocol in request.subprotocols
    )


def _error_then_close(event: dict[str, object], close: tuple[int, str]) -> tuple[Step, ...]:
    return (
        FrameStep(Direction.SERVER, event),
        CloseStep(code=close[0], reason=close[1]),
    )


def decide(handshake: Handshake, request: UpgradeRequest, ids: EventIds) -> Decision:
    """Decide how to answer ``request`` given an episode's ``handshake``.

    Cassette rules come first, so a cassette can override the GA emulation;
    then the GA checks in the order the live API applies them (credentials, then
    model); otherwise the timeline is replayed.
    """
    for number, rule in enumerate(handshake.rules, start=1):
        if not condition_holds(rule.when, request):
            continue
        why = f"handshake rule {number}" + (f" (line {rule.line})" if rule.line else "")
        if rule.refuse is not None:
            return Refuse(rule.refuse.status, rule.refuse.body, rule.refuse.headers, why)
        return Answer(rule.respond, why)
    if not has_credentials(request):
        return Answer(
            _error_then_close(missing_auth_error(ids.next()), AUTH_CLOSE),
            "GA emulation: no Authorization",
        )
    if all(request.param(name) is None for name in ("model", "call_id", "intent")):
        return Answer(
            _error_then_close(missing_model_error(ids.next()), MISSING_MODEL_CLOSE),
            "GA emulation: no model",
        )
    return Replay(tuple(expectation_differences(handshake.expect, request)))
