"""Who may connect, decided from plain values: origins, hosts, the client token."""

from __future__ import annotations

import json

import pytest

from fakeupstream.access import AccessPolicy, is_loopback_origin, is_trusted_host


@pytest.mark.parametrize(
    "origin",
    ["http://localhost:3000", "http://127.0.0.1", "https://[::1]:8443", "http://app.localhost"],
)
def test_loopback_origins(origin: str) -> None:
    assert is_loopback_origin(origin)
    assert AccessPolicy().check_origin([("Origin", origin)]) is None


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "null", "http://localhost.evil.example", "file://", "http://[::1"],
)
def test_foreign_origins_are_refused_with_the_openai_error_shape(origin: str) -> None:
    assert not is_loopback_origin(origin)
    refused = AccessPolicy().check_origin([("origin", origin)])
    assert refused is not None and refused.status == 403
    error = json.loads(refused.body)["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "origin_not_allowed")
    assert "--allow-origin" in error["message"]


def test_no_origin_is_an_sdk_or_a_gateway() -> None:
    assert AccessPolicy().check_origin([("User-Agent", "OpenAI/Python")]) is None


def test_allowed_origins() -> None:
    policy = AccessPolicy(allow_origins=("https://app.example/",))
    assert policy.check_origin([("Origin", "https://APP.example")]) is None
    assert policy.check_origin([("Origin", "https://other.example")]) is not None
    assert AccessPolicy(allow_origins=("*",)).check_origin([("Origin", "null")]) is None


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8765", True),
        ("localhost:8765", True),
        ("[::1]:8765", True),
        ("10.0.0.5:8765", True),  # an IP literal cannot be rebound
        ("fakeupstream:8765", True),  # nor a single-label name (a compose service)
        ("evil.example:8765", False),
        ("evil.example", False),
        ("localhost.evil.example", False),
        ("", False),
        ("[::1", False),
    ],
)
def test_admin_hosts(host: str, allowed: bool) -> None:
    assert is_trusted_host(host) is allowed
    refused = AccessPolicy().check_admin([("Host", host)])
    assert (refused is None) is allowed
    if refused is not None:
        assert json.loads(refused.body)["error"]["code"] == "host_not_allowed"


def test_the_client_token() -> None:
    assert AccessPolicy().check_token("/v1/realtime", []) is None
    policy = AccessPolicy(client_token="s3cret-token")
    assert "s3cret" not in repr(policy)
    assert policy.check_token("/v1/realtime", [("X-FakeUpstream-Token", "s3cret-token")]) is None
    assert policy.check_token("/v1/realtime?fakeupstream_token=s3cret-token", []) is None
    for target, headers in [
        ("/v1/realtime", []),
        ("/v1/realtime?fakeupstream_token=wrong", []),
        ("/v1/realtime", [("X-FakeUpstream-Token", "s3cret-tokenX")]),
        ("//[::1/v1/realtime", []),
    ]:
        refused = policy.check_token(target, headers)
        assert refused is not None and refused.status == 403
        assert json.loads(refused.body)["error"]["code"] == "client_token_required"
