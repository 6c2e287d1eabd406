"""proxy.handshake: the HTTP answers at the upgrade, as pure functions (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.http11 import Response

from proxy.config import ProxyConfig
from proxy.handshake import (
    SessionRequest,
    check_request,
    error_response,
    upstream_failure_response,
)

CONFIG = ProxyConfig(upstream="http://h", api_key_env="PROXY_KEY")


def body(response: Response) -> dict[str, Any]:
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Length"] == str(len(response.body))
    decoded: dict[str, Any] = json.loads(response.body)
    return decoded


def check(path: str, *headers: tuple[str, str], environ: dict[str, str] | None = None) -> Any:
    return check_request(path, Headers(list(headers)), CONFIG, environ or {})


def test_error_body_has_the_openai_shape() -> None:
    response = error_response(418, "t", "c", "m")
    assert response.status_code == 418
    assert response.reason_phrase == "I'm a Teapot"
    assert response.headers["Connection"] == "close"
    assert body(response) == {"error": {"type": "t", "code": "c", "message": "m", "param": None}}


@pytest.mark.parametrize("path", ["/", "/v1/realtime/x?model=m", "/v2/realtime?model=m", "/v1"])
def test_other_paths_are_404(path: str) -> None:
    response = check(path, ("Authorization", "Bearer k"))
    assert response.status_code == 404
    assert body(response)["error"]["code"] == "unknown_url"


@pytest.mark.parametrize("path", ["/v1/realtime", "/v1/realtime?model=", "/v1/realtime?foo=m"])
def test_missing_model_is_400(path: str) -> None:
    response = check(path, ("Authorization", "Bearer k"))
    assert response.status_code == 400
    assert body(response)["error"] == {
        "type": "invalid_request_error",
        "code": "missing_model",
        "message": "You must provide a model parameter, for example "
        "/v1/realtime?model=gpt-realtime",
        "param": "model",
    }


def test_missing_model_wins_over_missing_auth() -> None:
    assert check("/v1/realtime").status_code == 400


def test_no_key_anywhere_is_401() -> None:
    response = check("/v1/realtime?model=m")
    assert response.status_code == 401
    assert body(response)["error"]["code"] == "missing_api_key"


def test_several_authorization_headers_are_400() -> None:
    response = check("/v1/realtime?model=m", ("Authorization", "Bearer a"), ("Authorization", "b"))
    assert response.status_code == 400
    assert body(response)["error"]["code"] == "invalid_authorization"


def test_client_key_is_used_as_sent() -> None:
    assert check(
        "/v1/realtime?model=gpt-realtime&x=1", ("authorization", "Bearer sk-c")
    ) == SessionRequest(model="gpt-realtime", authorization="Bearer sk-c")


def test_fallback_key_comes_from_the_environment() -> None:
    checked = check("/v1/realtime?model=m", environ={"PROXY_KEY": "sk-env"})
    assert checked == SessionRequest(model="m", authorization="Bearer sk-env")
    assert "sk-env" not in repr(checked)


def test_refused_upgrade_status_and_body_pass_through() -> None:
    upstream = Response(
        429,
        "Too Many Requests",
        Headers(
            [
                ("Content-Type", "application/json"),
                ("Retry-After", "7"),
                ("Content-Length", "999"),
                ("Transfer-Encoding", "chunked"),
                ("Set-Cookie", "a=b"),
            ]
        ),
        b'{"error": {"code": "rate_limit_exceeded"}}',
    )
    response = upstream_failure_response(InvalidStatus(upstream), 10)
    assert response.status_code == 429
    assert response.body == upstream.body
    assert response.headers["Retry-After"] == "7"
    assert response.headers["Content-Length"] == str(len(upstream.body))
    assert "Transfer-Encoding" not in response.headers
    assert "Set-Cookie" not in response.headers


def test_refusal_without_body() -> None:
    upstream = Response(403, "Forbidden", Headers(), b"")
    response = upstream_failure_response(InvalidStatus(upstream), 10)
    assert (response.status_code, response.body) == (403, b"")


def test_timeout_is_504() -> None:
    response = upstream_failure_response(TimeoutError("timed out during opening handshake"), 2.5)
    assert response.status_code == 504
    assert body(response)["error"]["code"] == "upstream_timeout"
    assert "2.5 s" in body(response)["error"]["message"]


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        OSError(113, "No route to host"),
        InvalidHandshake("missing Sec-WebSocket-Accept header"),
    ],
)
def test_unreachable_or_broken_upstream_is_502(exc: Exception) -> None:
    response = upstream_failure_response(exc, 10)
    assert response.status_code == 502
    assert body(response)["error"]["code"] == "upstream_unreachable"
