"""Validate cassette files: the format, then every event against the official SDK types,
then the HTTP exchanges (each must be one that replay can answer, and hold no key)."""

from __future__ import annotations

import json
from pathlib import Path

from ..cassette import Cassette, Direction, FrameStep
from ..exceptions import CassetteError
from ..redaction import find_leaks
from ..rest import is_rest_route
from .cassette_file import load_cassette

__all__ = ["check_cassette", "event_problems", "http_problems"]


def event_problems(cassette: Cassette, *, sdk: bool = True) -> list[str]:
    """Return ``file:line: problem`` lines for events the SDK's GA types reject.

    Server events must be valid ``RealtimeServerEvent`` values. Client events are
    checked too, except those the GA API itself would reject (a cassette may
    record a client's mistake on purpose, e.g. an unknown event type).
    """
    if not sdk:
        return []
    from ..ga import SUPPORTED_CLIENT_EVENTS
    from .sdkcheck import validate_client_event, validate_server_event

    where = str(cassette.path) if cassette.path is not None else cassette.name
    problems = []
    for step in cassette.steps():
        if not isinstance(step, FrameStep) or not isinstance(step.data, dict):
            continue
        if step.direction is Direction.SERVER:
            reason = validate_server_event(step.data)
        elif step.event_type in SUPPORTED_CLIENT_EVENTS:
            reason = validate_client_event(step.data)
        else:
            continue
        if reason is not None:
            problems.append(
                f"{where}:{step.line}: {step.direction.value} event does not match "
                f"the openai SDK's GA types: {reason}"
            )
    return problems


def http_problems(cassette: Cassette) -> list[str]:
    """Return ``file:line: problem`` lines for HTTP exchanges that are never replayed
    (not a route the fake serves) or that hold a credential.

    An ephemeral key belongs in a cassette as ``ek_REDACTED``: replay answers with a
    fresh key that opens a session, which a recorded one never would.
    """
    where = str(cassette.path) if cassette.path is not None else cassette.name
    problems = []
    for exchange in cassette.http:
        name = f"{exchange.method} {exchange.route}"
        if not is_rest_route(exchange.route):
            problems.append(
                f"{where}:{exchange.line}: the HTTP exchange {name} is never replayed: "
                "the fake serves no such route (models, client_secrets, sessions, calls)"
            )
        parts = (
            exchange.path,
            exchange.response_headers,
            exchange.request_body,
            exchange.response_body,
        )
        for found in find_leaks(json.dumps(parts)):
            what = found.partition(": ")[2]
            problems.append(
                f"{where}:{exchange.line}: the HTTP exchange {name} holds {what}; "
                "write keys as ek_REDACTED (replay mints a fresh one) or REDACTED"
            )
    return problems


def check_cassette(path: Path, *, sdk: bool = True) -> list[str]:
    """Validate one cassette file; return its problems (empty when it is fine)."""
    try:
        cassette = load_cassette(path)
    except CassetteError as exc:
        return [str(exc)]
    return [*event_problems(cassette, sdk=sdk), *http_problems(cassette)]
