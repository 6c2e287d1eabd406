"""The small HTTP admin API served next to the WebSocket endpoint (sans-I/O).

``POST /__fakeupstream/cassette?name=N`` picks the cassette for the next
connections, ``GET /__fakeupstream/health`` says the server is up,
``GET /__fakeupstream/report`` returns what happened on each connection,
``GET /__fakeupstream/cassettes`` lists the cassettes and
``POST /__fakeupstream/reset`` forgets the reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from .exceptions import CassetteError, CassetteNotFound
from .report import ConnectionReport

__all__ = ["ADMIN_PREFIX", "AdminState", "HttpResponse", "handle_admin", "json_response"]

ADMIN_PREFIX = "/__fakeupstream/"


class AdminState(Protocol):
    """What the admin API needs from the server."""

    def current_cassette(self) -> str | None: ...

    def use(self, name: str) -> None: ...

    def reports(self) -> list[ConnectionReport]: ...

    def reset(self) -> None: ...

    def cassettes(self) -> list[tuple[str, str]]: ...


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """An HTTP response to write back as is."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=())

    def encode(self) -> bytes:
        """The response bytes, ``Connection: close`` included."""
        reason = HTTPStatus(self.status).phrase
        lines = [f"HTTP/1.1 {self.status} {reason}"]
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def json_response(
    status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()
) -> HttpResponse:
    """A JSON response."""
    body = json.dumps(payload, indent=None, separators=(",", ":")).encode()
    return HttpResponse(status, body, (("Content-Type", "application/json"), *headers))


def _error(status: int, message: str, **extra: Any) -> HttpResponse:
    return json_response(status, {"error": {"message": message, **extra}})


_ENDPOINTS = {
    "health": ("GET",),
    "report": ("GET",),
    "cassettes": ("GET",),
    "cassette": ("POST",),
    "reset": ("POST",),
}


def handle_admin(method: str, target: str, state: AdminState) -> HttpResponse:
    """Answer one admin request.

    Args:
        method: the HTTP method.
        target: the request target, e.g. ``/__fakeupstream/cassette?name=session``.
        state: the server.
    """
    parts = urlsplit(target)
    endpoint = parts.path.removeprefix(ADMIN_PREFIX).rstrip("/")
    allowed = _ENDPOINTS.get(endpoint)
    if allowed is None:
        return _error(
            404,
            f"unknown admin endpoint {parts.path!r}",
            endpoints=[f"{m} {ADMIN_PREFIX}{e}" for e, ms in _ENDPOINTS.items() for m in ms],
        )
    if method not in allowed:
        return json_response(
            405,
            {"error": {"message": f"{method} is not allowed here; use " + " or ".join(allowed)}},
            (("Allow", ", ".join(allowed)),),
        )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if endpoint == "health":
        return json_response(200, {"status": "ok", "cassette": state.current_cassette()})
    if endpoint == "report":
        return json_response(200, {"connections": [r.to_json() for r in state.reports()]})
    if endpoint == "cassettes":
        return json_response(
            200,
            {
                "cassettes": [
                    {"name": name, "description": description}
                    for name, description in state.cassettes()
                ]
            },
        )
    if endpoint == "reset":
        state.reset()
        return json_response(200, {"status": "reset"})
    name = query.get("name", "")
    if not name:
        return _error(
            400, "missing query parameter 'name': POST /__fakeupstream/cassette?name=<cassette>"
        )
    try:
        state.use(name)
    except CassetteNotFound as exc:
        return _error(404, str(exc), available=list(exc.available))
    except CassetteError as exc:
        return _error(422, str(exc))
    return json_response(200, {"cassette": name})
