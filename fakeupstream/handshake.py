"""Decide how an upgrade request is answered, before any frame is exchanged.

Sans-I/O: it takes the request (path, query, headers, subprotocols) and the
cassette, and returns a decision. The GA API accepts every upgrade (HTTP 101)
and reports handshake-time failures as one ``error`` event followed by a close;
a cassette may also refuse with an HTTP status, as some gateways do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from .cassette import CloseStep, Condition, Direction, Expectation, FrameStep, Handshake, Step
from .ga import (
    AUTH_CLOSE,
    BETA_CLOSE,
    BETA_HEADER,
    MISSING_MODEL_CLOSE,
    EventIds,
    beta_shape_error,
    missing_auth_error,
    missing_model_error,
)
from .redaction import KEY_SUBPROTOCOL
from .upgrade import UpgradeRequest

__all__ = [
    "Answer",
    "Decision",
    "Refuse",
    "Replay",
    "condition_holds",
    "decide",
    "expectation_differences",
    "has_credentials",
]


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
    then the GA checks in the order the live API applies them: credentials, then
    the beta shape (any ``OpenAI-Beta`` header, whatever its value or letter case,
    unless the handshake says ``accept_beta``), then the model; otherwise the
    timeline is replayed.
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
    if not handshake.accept_beta and request.header(BETA_HEADER) is not None:
        return Answer(
            _error_then_close(beta_shape_error(ids.next()), BETA_CLOSE),
            "GA emulation: OpenAI-Beta header",
        )
    if all(request.param(name) is None for name in ("model", "call_id", "intent")):
        return Answer(
            _error_then_close(missing_model_error(ids.next()), MISSING_MODEL_CLOSE),
            "GA emulation: no model",
        )
    return Replay(tuple(expectation_differences(handshake.expect, request)))
