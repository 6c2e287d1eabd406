"""Secrets never reach a cassette: the redactor, and the leak guard behind it."""

from __future__ import annotations

import pytest

from fakeupstream.redaction import (
    EPHEMERAL_PLACEHOLDER,
    REDACTED,
    Redactor,
    find_leaks,
    is_secret_header,
    is_secret_param,
    mask,
    redact_target,
    redact_url,
)

KEY = "sk-SENTINEL0123456789abcdefXYZ"
EPHEMERAL = "ek_68af3c0f27a481908f6c3e7a2a9d"


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "AUTHORIZATION",
        "authorization",
        "api-key",
        "Api-Key",
        "X-API-KEY",
        "x-goog-api-key",
        "OpenAI-Organization",
        "Cookie",
        "X-Auth-Token",
    ],
)
def test_secret_headers_match_in_any_letter_case(name: str) -> None:
    assert is_secret_header(name)


@pytest.mark.parametrize("name", ["OpenAI-Beta", "User-Agent", "Content-Type", "Origin"])
def test_ordinary_headers_are_not_secret(name: str) -> None:
    assert not is_secret_header(name)


@pytest.mark.parametrize("name", ["api_key", "API_KEY", "key", "access_token", "client_secret"])
def test_key_bearing_query_parameters(name: str) -> None:
    assert is_secret_param(name)
    assert not is_secret_param("model")


def test_targets_and_urls_are_masked() -> None:
    assert redact_target(f"/v1/realtime?model=m&api_key={KEY}") == (
        "/v1/realtime?model=m&api_key=REDACTED"
    )
    assert redact_url(f"wss://user:{KEY}@api.example/v1/realtime?token={KEY}") == (
        "wss://api.example/v1/realtime?token=REDACTED"
    )


def test_client_secret_values_become_placeholders() -> None:
    redactor = Redactor()
    event = {
        "type": "session.created",
        "client_secret": {"value": "anything at all", "expires_at": 1789730100},
        "nested": {"client_secret": "also-a-secret"},
    }
    assert redactor.value(event) == {
        "type": "session.created",
        "client_secret": {"value": EPHEMERAL_PLACEHOLDER, "expires_at": 1789730100},
        "nested": {"client_secret": EPHEMERAL_PLACEHOLDER},
    }


def test_values_that_are_keys_are_replaced_wherever_they_are() -> None:
    redactor = Redactor()
    event = {"a": [EPHEMERAL, {"b": KEY}], "c": "ek_short", "n": 3, "t": None}
    assert redactor.value(event) == {
        "a": [EPHEMERAL_PLACEHOLDER, {"b": REDACTED}],
        "c": "ek_short",
        "n": 3,
        "t": None,
    }


def test_registered_secrets_are_replaced_inside_any_text() -> None:
    redactor = Redactor([KEY, "short"])  # too short to register: it would wreck transcripts
    assert redactor.secrets == (KEY,)
    assert redactor.text(f"my key is {KEY}, short one") == "my key is REDACTED, short one"
    assert redactor.binary(f"x{KEY}y".encode()) == b"xREDACTEDy"
    redactor.add_secret("sk-SENTINEL0123456789abcdefXYZ-longer")
    assert redactor.secrets[0].endswith("-longer")  # longest first: replaced whole
    assert redactor.text("sk-SENTINEL0123456789abcdefXYZ-longer!") == "REDACTED!"


def test_a_key_shape_inside_longer_text_is_left_for_the_guard() -> None:
    # Rewriting content a test may depend on would be a silent change; the guard refuses.
    text = f"the model said {KEY[:-1]}Q out loud"
    assert Redactor().text(text) == text
    assert find_leaks(text) == ["line 1: an OpenAI API key (sk-SE…)"]


def test_leak_guard_finds_each_key_shape_with_its_line() -> None:
    text = "\n".join(
        [
            "version: 1",
            f"a: {KEY}",
            f"b: {EPHEMERAL}",
            "c: Authorization Bearer eyJhbGciOiJIUzI1NiJ9.payload",
            "d: Bearer REDACTED",
            "e: sk-REDACTED and ek_REDACTED",
        ]
    )
    assert find_leaks(text) == [
        "line 2: an OpenAI API key (sk-SE…)",
        "line 3: an ephemeral client secret (ek_68…)",
        "line 4: a bearer token (Bearer eyJhb…)",
    ]


def test_leak_guard_sees_a_bearer_token_folded_onto_the_next_line() -> None:
    assert find_leaks("x: 'Authorization: Bearer\n  abcdefgh1234'") == [
        "line 1: a bearer token (Bearer abcd…)"
    ]


def test_leak_guard_finds_registered_values_of_any_shape() -> None:
    secret = "hunter2-correct-horse"
    findings = find_leaks(f"one\n{secret} and {secret}\n", [secret, "tiny"])
    assert findings == ["line 2: a secret in use (hunte…)"] * 2


def test_findings_never_print_the_secret() -> None:
    secrets = [KEY, "another-registered-value-1234"]
    text = f"{KEY}\n{EPHEMERAL}\nBearer abcdefghijklmnop\nanother-registered-value-1234\n"
    findings = find_leaks(text, secrets)
    assert len(findings) == 4
    joined = "\n".join(findings)
    for secret in [*secrets, EPHEMERAL, "abcdefghijklmnop"]:
        assert secret not in joined
    assert findings[0] == "line 1: a secret in use (sk-SE…)"  # the exact value wins


def test_mask_keeps_a_short_prefix_only() -> None:
    assert mask(KEY) == "sk-SE…"
    assert mask("abcdefgh") == "ab…"
    assert mask("ab") == "…"


def test_a_target_with_nothing_to_mask_comes_back_as_it_came() -> None:
    assert redact_target("/v1/realtime?model=gpt-realtime&x=a+b") == (
        "/v1/realtime?model=gpt-realtime&x=a+b"
    )


def test_a_key_bearing_name_hidden_in_a_percent_escape_is_still_masked() -> None:
    assert redact_target(f"/v1/realtime?model=m&api_%6Bey={KEY}") == (
        "/v1/realtime?model=m&api_key=REDACTED"
    )
