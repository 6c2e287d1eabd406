"""HTTP answers the gateway gives at the upgrade, before any WebSocket frame.

Everything here is a pure function of the request or of the upstream failure,
so the rules (which status, which JSON body) are tested without sockets.
Errors use the OpenAI REST shape, ``{"error": {"type", "code", "message",
"param"}}``, so SDKs and humans read them the same way as upstream errors.
"""

from __future__ import annotations

import http
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from proxy.config import REALTIME_PATH, ProxyConfig, resolve_authorization

__all__ = [
    "SessionRequest",
    "check_request",
    "error_response",
    "upstream_failure_response",
]

# Upstream response headers worth keeping when its refusal is passed through.
# Framing and hop-by-hop headers are rebuilt for the new body instead.
_PASSTHROUGH_HEADERS = ("Content-Type", "Retry-After", "WWW-Authenticate")


@dataclass(frozen=True)
class SessionRequest:
    """A client upgrade request that passed the gateway's own checks.

    ``repr`` hides ``authorization``: it is the API key. ``model`` is empty for a
    sideband (``call_id``) or transcription (``intent``) session that names none.
    """

    model: str
    authorization: str
    call_id: str | None = None
    intent: str | None = None

    def __repr__(self) -> str:
        return (
            f"SessionRequest(model={self.model!r}, authorization=<redacted>, "
            f"call_id={self.call_id!r}, intent={self.intent!r})"
        )


def error_response(
    status: int, type_: str, code: str, message: str, param: str | None = None
) -> Response:
    """Build an HTTP error response with an OpenAI-style JSON body."""
    body = json.dumps(
        {"error": {"type": type_, "code": code, "message": message, "param": param}}
    ).encode()
    return _response(status, Headers([("Content-Type", "application/json")]), body)


def _response(status: int, headers: Headers, body: bytes) -> Response:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    headers["Content-Length"] = str(len(body))
    # The server cannot reuse the connection after refusing an upgrade.
    headers["Connection"] = "close"
    return Response(status, phrase, headers, body)


def check_request(
    path: str,
    headers: Headers,
    config: ProxyConfig,
    environ: Mapping[str, str],
) -> SessionRequest | Response:
    """Validate a client's upgrade request before any upstream work.

    Args:
        path: The request target, path and query.
        headers: The request headers.
        config: The gateway configuration (for the fallback key).
        environ: The process environment (injected for tests).

    Returns:
        The model and the ``Authorization`` value to send upstream, or the
        HTTP response refusing the request: 400 for a target that cannot be
        parsed, 404 for another path, 400 without
        ``model`` (or with several ``Authorization`` headers), 401 with no key.
    """
    try:
        target = urlsplit(path)
    except ValueError as exc:  # e.g. "//[::1/v1/realtime": an unbalanced "[" in the authority
        return error_response(
            400,
            "invalid_request_error",
            "invalid_request_target",
            f"Malformed request target: {exc}.",
        )
    if target.path != REALTIME_PATH:
        return error_response(
            404,
            "invalid_request_error",
            "unknown_url",
            f"Unknown request URL: GET {target.path}. This gateway serves {REALTIME_PATH}.",
        )
    query = parse_qs(target.query)
    model, call_id, intent = (
        (query.get(name) or [""])[0].strip() for name in ("model", "call_id", "intent")
    )
    # Like the GA API: a model, or a call to attach to, or a transcription intent.
    if not (model or call_id or intent):
        return error_response(
            400,
            "invalid_request_error",
            "missing_model",
            f"You must provide a model parameter, for example {REALTIME_PATH}?model=gpt-realtime",
            param="model",
        )
    values = headers.get_all("Authorization")
    if len(values) > 1:
        return error_response(
            400,
            "invalid_request_error",
            "invalid_authorization",
            "Send one Authorization header, not several.",
        )
    authorization = resolve_authorization(values[0] if values else None, config, environ)
    if authorization is None:
        return error_response(
            401,
            "invalid_request_error",
            "missing_api_key",
            "Missing bearer authentication in header: send 'Authorization: Bearer <key>'.",
        )
    return SessionRequest(
        model=model, authorization=authorization, call_id=call_id or None, intent=intent or None
    )


def upstream_failure_response(exc: Exception, connect_timeout: float) -> Response:
    """Map a failed upstream connection attempt to the client's HTTP answer.

    An upstream that refused the upgrade with an HTTP status has its status
    and body passed through unchanged, so the client sees the real cause
    (a 401 from a gateway further up, a 429, ...). A timeout is 504; anything
    else (refused, unreachable, not a WebSocket server) is 502.
    """
    if isinstance(exc, InvalidStatus) and 200 <= exc.response.status_code <= 599:
        upstream = exc.response
        headers = Headers()
        for name in _PASSTHROUGH_HEADERS:
            for value in upstream.headers.get_all(name):
                headers[name] = value  # Headers.__setitem__ appends
        return _response(upstream.status_code, headers, bytes(upstream.body or b""))
    if isinstance(exc, TimeoutError):
        return error_response(
            504,
            "upstream_error",
            "upstream_timeout",
            f"The upstream did not complete the WebSocket handshake within {connect_timeout:g} s.",
        )
    return error_response(
        502,
        "upstream_error",
        "upstream_unreachable",
        f"Could not open the upstream WebSocket: {_describe(exc)}",
    )


def _describe(exc: Exception) -> str:
    """Say what failed without echoing anything the client sent."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused."
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}."
    return f"{type(exc).__name__}: {exc}."
