"""The GA session model with plain events in and out: no sockets, no clock."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from fakeupstream.ga import EventIds
from fakeupstream.session_model import GA_DEFAULT_SESSION, SessionModel
from fakeupstream.storage.library import CassetteLibrary
from fakeupstream.storage.sdkcheck import validate_server_event

USER_TEXT = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "Hello there"}],
}
# 100 ms of 16-bit PCM at 24 kHz.
AUDIO_100_MS = base64.b64encode(bytes(4800)).decode()


def model() -> SessionModel:
    return SessionModel(EventIds(7), connection=7)


def types(events: list[dict[str, Any]] | None) -> list[str]:
    assert events is not None
    return [event["type"] for event in events]


def error(events: list[dict[str, Any]] | None) -> dict[str, Any]:
    assert events is not None
    [event] = events
    assert event["type"] == "error"
    return dict(event["error"])


def test_session_update_merges_into_the_recorded_session() -> None:
    m = model()
    created = CassetteLibrary().load("session").timeline[0]
    m.observe_server(created.data)  # type: ignore[arg-type]
    answer = m.answer(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "output_modalities": ["text"],
                "audio": {"output": {"voice": "cedar"}},
            },
        }
    )
    assert answer is not None
    [updated] = answer
    assert updated["type"] == "session.updated"
    session = updated["session"]
    assert session["output_modalities"] == ["text"]
    assert session["audio"]["output"]["voice"] == "cedar"
    # Untouched parts survive, including the siblings of a changed nested key.
    assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["id"] == created.data["session"]["id"]  # type: ignore[index]
    assert m.session is session


def test_without_a_recorded_session_the_ga_default_is_the_base() -> None:
    m = model()
    answer = m.answer({"type": "session.update", "session": {"type": "realtime"}})
    assert answer is not None
    assert answer[0]["session"] == GA_DEFAULT_SESSION


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"output_modalities": ["text"]}, "missing_required_parameter", "session.type"),
        ({"type": "nope"}, "invalid_value", "session.type"),
        ({"type": "realtime", "bogus_field": 1}, "unknown_parameter", "session.bogus_field"),
        ({"type": "realtime", "output_modalities": ["video"]}, "invalid_value", None),
        ({"type": "realtime", "tool_choice": "always"}, "invalid_value", "session.tool_choice"),
        (
            {"type": "realtime", "audio": {"output": {"voice": "robot"}}},
            "invalid_value",
            "session.audio.output.voice",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            },
            "integer_below_min_value",
            "session.audio.input.format.rate",
        ),
    ],
)
def test_an_invalid_session_update_gets_the_live_error_and_changes_nothing(
    session: dict[str, Any], code: str, param: str | None
) -> None:
    m = model()
    before = m.session
    found = error(m.answer({"type": "session.update", "session": session}))
    assert found["code"] == code
    assert found["param"] == (param or "session.output_modalities")
    assert found["event_id"] is None  # the client sent none: null, never made up
    assert m.session is before


def test_the_live_wording_of_session_update_errors() -> None:
    m = model()
    missing = error(m.answer({"type": "session.update", "event_id": "c1", "session": {}}))
    assert missing["message"] == "Missing required parameter: 'session.type'."
    assert missing["event_id"] == "c1"
    unknown = error(m.answer({"type": "session.update", "session": {"type": "realtime", "x": 1}}))
    assert unknown["message"] == "Unknown parameter: 'session.x'."


def test_items_are_created_in_order_and_retrieved_truncated_and_deleted() -> None:
    m = model()
    first = m.answer({"type": "conversation.item.create", "item": USER_TEXT})
    assert types(first) == ["conversation.item.added", "conversation.item.done"]
    assert first is not None
    item_id = first[0]["item"]["id"]
    assert item_id.startswith("item_") and len(item_id) == len("item_") + 21
    assert first[0]["previous_item_id"] is None
    assert first[0]["item"]["status"] == "completed"
    second = m.answer({"type": "conversation.item.create", "item": USER_TEXT})
    assert second is not None and second[0]["previous_item_id"] == item_id
    retrieved = m.answer({"type": "conversation.item.retrieve", "item_id": item_id})
    assert retrieved is not None and retrieved[0]["item"]["id"] == item_id
    truncated = m.answer(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 100,
        }
    )
    assert types(truncated) == ["conversation.item.truncated"]
    assert types(m.answer({"type": "conversation.item.delete", "item_id": item_id})) == [
        "conversation.item.deleted"
    ]
    assert item_id not in m.items
    gone = error(m.answer({"type": "conversation.item.retrieve", "item_id": item_id}))
    assert (gone["code"], gone["param"]) == ("invalid_value", "item_id")


def test_an_item_can_go_first_or_after_a_named_item_only() -> None:
    m = model()
    m.answer({"type": "conversation.item.create", "item": USER_TEXT})
    root = m.answer(
        {"type": "conversation.item.create", "previous_item_id": "root", "item": USER_TEXT}
    )
    assert root is not None and root[0]["previous_item_id"] is None
    unknown = error(
        m.answer(
            {"type": "conversation.item.create", "previous_item_id": "item_x", "item": USER_TEXT}
        )
    )
    assert unknown["param"] == "previous_item_id"


def test_items_seen_in_the_recording_can_be_retrieved() -> None:
    m = model()
    m.observe_server(
        {
            "type": "conversation.item.added",
            "previous_item_id": None,
            "item": {"id": "item_recorded", **USER_TEXT},
        }
    )
    retrieved = m.answer({"type": "conversation.item.retrieve", "item_id": "item_recorded"})
    assert retrieved is not None and retrieved[0]["item"]["id"] == "item_recorded"


def test_commit_needs_100_ms_of_audio() -> None:
    m = model()
    empty = error(m.answer({"type": "input_audio_buffer.commit", "event_id": "commit_10"}))
    assert empty == {
        "type": "invalid_request_error",
        "code": "input_audio_buffer_commit_empty",
        "message": "Error committing input audio buffer: buffer too small. Expected at least "
        "100ms of audio, but buffer only has 0.00ms of audio.",
        "param": None,
        "event_id": "commit_10",
    }
    assert m.answer({"type": "input_audio_buffer.append", "audio": AUDIO_100_MS}) == []
    assert m.audio_ms == 100.0
    committed = m.answer({"type": "input_audio_buffer.commit"})
    assert types(committed) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert m.audio_bytes == 0


def test_appends_the_recording_answers_still_fill_the_buffer() -> None:
    m = model()
    m.observe_client({"type": "input_audio_buffer.append", "audio": AUDIO_100_MS})
    assert m.audio_ms == 100.0
    assert types(m.answer({"type": "input_audio_buffer.clear"})) == ["input_audio_buffer.cleared"]
    assert m.audio_ms == 0.0


def test_cancel_with_nothing_in_flight_and_during_a_recorded_response() -> None:
    m = model()
    idle = error(m.answer({"type": "response.cancel"}))
    assert idle["code"] == "response_cancel_not_active"
    assert idle["message"] == "Cancellation failed: no active response found"
    m.observe_server({"type": "response.created", "response": {"id": "resp_1"}})
    assert m.answer({"type": "response.cancel"}) is None  # only the recording can end it
    m.observe_server({"type": "response.done", "response": {"id": "resp_1"}})
    assert error(m.answer({"type": "response.cancel"}))["code"] == "response_cancel_not_active"


def test_what_needs_a_model_run_is_not_answered() -> None:
    assert model().answer({"type": "response.create"}) is None


def every_answer() -> list[dict[str, Any]]:
    """One of each event the model makes, errors included."""
    m = model()
    made: list[dict[str, Any]] = []

    def ask(event: dict[str, Any]) -> None:
        answer = m.answer(event)
        assert answer is not None, event
        made.extend(answer)

    ask({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}})
    ask({"type": "session.update", "session": {"type": "realtime", "bogus": 1}})
    ask({"type": "conversation.item.create", "item": USER_TEXT})
    item_id = made[-1]["item"]["id"]
    ask(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
        }
    )
    ask({"type": "conversation.item.retrieve", "item_id": item_id})
    ask(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 0,
        }
    )
    ask({"type": "conversation.item.delete", "item_id": item_id})
    ask({"type": "conversation.item.retrieve", "item_id": item_id})
    ask({"type": "input_audio_buffer.commit"})
    ask({"type": "input_audio_buffer.append", "audio": AUDIO_100_MS})
    ask({"type": "input_audio_buffer.commit"})
    ask({"type": "input_audio_buffer.clear"})
    ask({"type": "response.cancel"})
    return made


def test_every_event_the_model_makes_validates_against_the_sdk_ga_types() -> None:
    made = every_answer()
    assert {event["type"] for event in made} >= {
        "session.updated",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "conversation.item.deleted",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "error",
    }
    problems = [problem for event in made if (problem := validate_server_event(event))]
    assert problems == []
