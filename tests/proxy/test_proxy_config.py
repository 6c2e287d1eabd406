"""proxy.config: the upstream URL and headers, built from plain values (no sockets)."""

from __future__ import annotations

import pytest

import proxy
from proxy.config import (
    ConfigError,
    ProxyConfig,
    build_upstream_target,
    parse_upstream_header,
    resolve_authorization,
)


def target(
    upstream: str, model: str = "gpt-realtime", **config: object
) -> tuple[str, dict[str, str]]:
    built = build_upstream_target(ProxyConfig(upstream=upstream, **config), model, "Bearer sk-1")  # type: ignore[arg-type]
    return built.url, dict(built.headers)


@pytest.mark.parametrize(
    ("upstream", "url"),
    [
        ("http://127.0.0.1:8765", "ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime"),
        ("https://api.openai.com", "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
        ("HTTP://h:1", "ws://h:1/v1/realtime?model=gpt-realtime"),
        ("ws://h:1", "ws://h:1/v1/realtime?model=gpt-realtime"),
        ("wss://h", "wss://h/v1/realtime?model=gpt-realtime"),
        (
            "http://h:1/cassettes/session",
            "ws://h:1/cassettes/session/v1/realtime?model=gpt-realtime",
        ),
        ("http://h:1/prefix/", "ws://h:1/prefix/v1/realtime?model=gpt-realtime"),
        (
            "https://h/openai?api-version=2025-08-28",
            "wss://h/openai/v1/realtime?api-version=2025-08-28&model=gpt-realtime",
        ),
        ("http://[::1]:9", "ws://[::1]:9/v1/realtime?model=gpt-realtime"),
    ],
)
def test_upstream_url_maps_scheme_and_keeps_prefix(upstream: str, url: str) -> None:
    assert target(upstream)[0] == url


def test_model_is_percent_encoded() -> None:
    url, _ = target("http://h", model="gpt realtime/2&x=1")
    assert url == "ws://h/v1/realtime?model=gpt+realtime%2F2%26x%3D1"


def test_headers_are_authorization_only_by_default() -> None:
    # A hard-coded OpenAI-Beta header is rejected by the GA API: nothing vendor-specific goes up.
    assert target("http://h")[1] == {"Authorization": "Bearer sk-1"}


def test_configured_headers_follow_authorization() -> None:
    built = build_upstream_target(
        ProxyConfig(
            upstream="http://h",
            upstream_headers=(("OpenAI-Beta", "realtime=v1"), ("X-Team", "blue")),
        ),
        "m",
        "Bearer k",
    )
    assert built.headers == (
        ("Authorization", "Bearer k"),
        ("OpenAI-Beta", "realtime=v1"),
        ("X-Team", "blue"),
    )


def test_secrets_stay_out_of_reprs() -> None:
    config = ProxyConfig(upstream="http://h", upstream_headers=(("api-key", "sk-secret"),))
    built = build_upstream_target(config, "m", "Bearer sk-secret")
    assert "sk-secret" not in repr(config)
    assert "sk-secret" not in repr(built)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OpenAI-Beta: realtime=v1", ("OpenAI-Beta", "realtime=v1")),
        ("  X-A :  b c  ", ("X-A", "b c")),
        ("X-Empty:", ("X-Empty", "")),
        ("X-Url: http://a:b", ("X-Url", "http://a:b")),
    ],
)
def test_parse_upstream_header(text: str, expected: tuple[str, str]) -> None:
    assert parse_upstream_header(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("OpenAI-Beta realtime=v1", "must look like 'Name: value'"),
        (": v", "not a valid HTTP header name"),
        ("Bad Name: v", "not a valid HTTP header name"),
        ("X-A: b\r\nX-B: c", "line break"),
        ("Authorization: Bearer x", "comes from the client, or from --api-key-env"),
        ("sec-websocket-key: x", "set by the gateway itself"),
        ("Host: x", "set by the gateway itself"),
    ],
)
def test_parse_upstream_header_errors_are_clear(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_upstream_header(text)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"upstream": "ftp://h"}, "must start with http://, https://, ws:// or wss://"),
        ({"upstream": "127.0.0.1:8000"}, "must start with http://"),
        ({"upstream": "http://"}, "has no host"),
        ({"upstream": "http://u:p@h"}, "must not carry credentials"),
        ({"upstream": "http://h#x"}, "fragment"),
        ({"upstream": "http://h:99999"}, "invalid port"),
        ({"upstream": "http://h", "connect_timeout": 0}, "positive number"),
        ({"upstream": "http://h", "connect_timeout": float("nan")}, "positive number"),
        ({"upstream": "http://h", "api_key_env": ""}, "name of an environment variable"),
        ({"upstream": "http://h", "upstream_headers": (("Upgrade", "x"),)}, "gateway itself"),
    ],
)
def test_invalid_config_is_refused(config: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ProxyConfig(**config)  # type: ignore[arg-type]


def test_config_is_frozen() -> None:
    config = ProxyConfig(upstream="http://h")
    with pytest.raises(AttributeError):
        config.upstream = "http://other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("client", "env_name", "environ", "expected"),
    [
        ("Bearer sk-client", "KEY", {"KEY": "sk-env"}, "Bearer sk-client"),
        (None, "KEY", {"KEY": "sk-env"}, "Bearer sk-env"),
        ("  ", "KEY", {"KEY": " sk-env\n"}, "Bearer sk-env"),
        (None, "KEY", {}, None),
        (None, "KEY", {"KEY": ""}, None),
        (None, None, {"KEY": "sk-env"}, None),
    ],
)
def test_resolve_authorization(
    client: str | None, env_name: str | None, environ: dict[str, str], expected: str | None
) -> None:
    config = ProxyConfig(upstream="http://h", api_key_env=env_name)
    assert resolve_authorization(client, config, environ) == expected


def test_public_api_is_consistent() -> None:
    assert sorted(proxy.__all__) == proxy.__all__
    for name in proxy.__all__:
        assert getattr(proxy, name) is not None
