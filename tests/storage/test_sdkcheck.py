"""fakeupstream.storage.sdkcheck: validating events against the official SDK's GA types."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from fakeupstream.storage import sdkcheck
from fakeupstream.storage.sdkcheck import (
    sdk_available,
    validate_client_event,
    validate_server_event,
)

needs_sdk = pytest.mark.skipif(not sdk_available(), reason="needs fakeupstream[sdk] (openai)")

TEXT_DELTA: dict[str, Any] = {
    "type": "response.output_text.delta",
    "event_id": "event_DAj1s1Pq7wE9rT1yUi3Oh",
    "response_id": "resp_DAj1s1Gx9pL3mN5bVc8Xz",
    "item_id": "item_DAj1s1Kf4gH6jK8lZx0Cv",
    "output_index": 0,
    "content_index": 0,
    "delta": "Hi there,",
    "obfuscation": "A5Nj2cC01aseXj",
}
BETA_ERROR: dict[str, Any] = {
    "type": "error",
    "event_id": "event_DAi7Rb1xw0cVn3QeZp8Ls",
    "error": {
        "type": "invalid_request_error",
        "code": "beta_api_shape_disabled",
        "message": "The Realtime Beta API is no longer supported. "
        "Please use /v1/realtime for the GA API.",
        "param": None,
        "event_id": None,
    },
}
SESSION_UPDATED: dict[str, Any] = {
    "type": "session.updated",
    "event_id": "event_DAj1rB3cN8xLq0WvZ5eTg",
    "session": {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_DAj1qjX0bW7cP3mRkT9Vh",
        "model": "gpt-realtime-2025-08-28",
        "output_modalities": ["text"],
        "max_output_tokens": "inf",
        "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None},
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
        },
        "expires_at": 1789730100,
    },
}


@needs_sdk
@pytest.mark.parametrize(
    "event", [TEXT_DELTA, BETA_ERROR, SESSION_UPDATED], ids=lambda e: e["type"]
)
def test_valid_server_events_pass(event: dict[str, Any]) -> None:
    assert validate_server_event(event) is None


@needs_sdk
def test_wrong_field_type_names_the_field_and_the_event() -> None:
    reason = validate_server_event({**TEXT_DELTA, "output_index": "zero"})
    assert reason is not None
    assert "'response.output_text.delta'" in reason
    assert "RealtimeServerEvent" in reason
    assert "output_index: Input should be a valid integer" in reason
    assert "'zero'" in reason


@needs_sdk
def test_validation_is_strict_like_the_wire() -> None:
    # Lax pydantic would coerce "0" to 0; a server sending a string there is drift.
    reason = validate_server_event({**TEXT_DELTA, "content_index": "0"})
    assert reason is not None
    assert "content_index:" in reason


@needs_sdk
def test_missing_required_field() -> None:
    event = {k: v for k, v in TEXT_DELTA.items() if k != "response_id"}
    reason = validate_server_event(event)
    assert reason is not None
    assert "response_id: Field required" in reason


@needs_sdk
def test_nested_field_reports_a_dotted_path() -> None:
    event = {**SESSION_UPDATED, "session": {**SESSION_UPDATED["session"]}}
    event["session"]["output_modalities"] = ["txt"]
    reason = validate_server_event(event)
    assert reason is not None
    assert "output_modalities[0]: Input should be 'text' or 'audio'" in reason
    # The transcription-session branch of the union is ruled out by its type tag: no noise.
    assert "RealtimeTranscriptionSessionCreateRequest" not in reason


@needs_sdk
def test_unknown_server_event_type() -> None:
    reason = validate_server_event({"type": "response.text.delta", "event_id": "event_x"})
    assert reason is not None
    assert "unknown server event type 'response.text.delta'" in reason


@needs_sdk
@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"event_id": "event_x"}, "has no 'type'"),
        ({"type": 7}, "has a 'type' of 7"),
        (["not", "a", "mapping"], "not a JSON object"),
    ],
)
def test_malformed_events(event: Any, expected: str) -> None:
    reason = validate_server_event(event)
    assert reason is not None
    assert expected in reason


@needs_sdk
def test_error_event_with_echoed_client_event_id() -> None:
    event = {**BETA_ERROR, "error": {**BETA_ERROR["error"], "event_id": "evt_bogus_001"}}
    assert validate_server_event(event) is None
    event["error"]["message"] = None
    reason = validate_server_event(event)
    assert reason is not None
    assert "error.message: Input should be a valid string" in reason


@needs_sdk
@pytest.mark.parametrize(
    "event",
    [
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}},
        {"type": "response.create", "response": {"output_modalities": ["text"]}},
        {"type": "response.cancel"},
        {"type": "input_audio_buffer.append", "audio": "AAAAAP//AQD+/wIA/f8DAA=="},
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
        },
    ],
    ids=lambda e: e["type"],
)
def test_valid_client_events_pass(event: dict[str, Any]) -> None:
    assert validate_client_event(event) is None


@needs_sdk
def test_invalid_client_events_fail() -> None:
    reason = validate_client_event({"type": "totally.bogus.event", "event_id": "evt_bogus_001"})
    assert reason is not None
    assert "unknown client event type 'totally.bogus.event'" in reason
    assert "RealtimeClientEvent" in reason

    reason = validate_client_event({"type": "input_audio_buffer.append", "audio": 42})
    assert reason is not None
    assert "'input_audio_buffer.append'" in reason
    assert "audio: Input should be a valid string" in reason

    # A server event type is not a client event.
    reason = validate_client_event({"type": "session.updated"})
    assert reason is not None
    assert "unknown client event type 'session.updated'" in reason


@pytest.fixture
def without_sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pretend openai is not installed (a None entry makes `import` fail)."""
    for name in ("openai", "openai.types", "openai.types.realtime"):
        monkeypatch.setitem(sys.modules, name, None)
    sdkcheck._registry.cache_clear()
    yield
    sdkcheck._registry.cache_clear()


@pytest.mark.usefixtures("without_sdk")
def test_without_the_sdk() -> None:
    assert sdk_available() is False
    with pytest.raises(RuntimeError, match=r"install fakeupstream\[sdk\]"):
        validate_server_event(TEXT_DELTA)
    with pytest.raises(RuntimeError, match=r"install fakeupstream\[sdk\]"):
        validate_client_event({"type": "response.cancel"})
