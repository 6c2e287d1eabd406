"""HTTP answers as values (sans-I/O), with one error shape everywhere.

Every HTTP error the fake gives (an unknown route, no cassette, a refused upgrade, an
admin mistake, an upstream the recorder cannot reach) has the OpenAI error shape, so a
client or gateway parses the fake's errors exactly like the real API's::

    {"error": {"type": "invalid_request_error", "code": "...", "message": "...", "param": null}}

Extra fields (e.g. ``available``, the cassettes that exist) go inside ``error``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

__all__ = ["HttpResponse", "error_body", "error_response", "json_response", "reason_phrase"]


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status`` (``Unknown`` for an unusual one)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """An HTTP response to write back as it is (the connection closes after it)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=())

    def encode(self) -> bytes:
        """The response bytes, ``Content-Length`` and ``Connection: close`` included."""
        lines = [f"HTTP/1.1 {self.status} {reason_phrase(self.status)}"]
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def json_response(
    status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()
) -> HttpResponse:
    """A response with a compact JSON body."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return HttpResponse(status, body, (("Content-Type", "application/json"), *headers))


def error_body(
    message: str,
    code: str | None,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The OpenAI error object: ``{"error": {"type", "code", "message", "param", ...}}``."""
    return {"error": {"type": type, "code": code, "message": message, "param": param, **extra}}


def error_response(
    status: int,
    message: str,
    code: str | None,
    *,
    type: str = "invalid_request_error",
    headers: tuple[tuple[str, str], ...] = (),
    **extra: Any,
) -> HttpResponse:
    """An HTTP error with the OpenAI error body."""
    return json_response(status, error_body(message, code, type=type, **extra), headers)
