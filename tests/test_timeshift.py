"""Time shifting: one implementation for replay and for appending recordings."""

from __future__ import annotations

from datetime import UTC, datetime

from fakeupstream.timeshift import seconds_since, shift_times


def test_time_fields_move_at_any_depth_and_nothing_else() -> None:
    event = {
        "type": "session.created",
        "session": {"expires_at": 100, "client_secret": {"expires_at": 200}, "n": 5},
        "items": [{"created_at": 300}, {"id": "x"}],
    }
    moved = shift_times(event, 10)
    assert moved["session"] == {"expires_at": 110, "client_secret": {"expires_at": 210}, "n": 5}
    assert moved["items"] == [{"created_at": 310}, {"id": "x"}]
    assert event["session"]["expires_at"] == 100  # the input is untouched


def test_zero_never_and_non_integers_stay() -> None:
    event = {"expires_at": 0, "created_at": True, "x": {"expires_at": "soon"}, "y": 1.5}
    assert shift_times(event, 10) is event


def test_unchanged_values_come_back_as_the_same_object() -> None:
    event = {"type": "response.output_text.delta", "delta": "hi", "list": [1, 2]}
    assert shift_times(event, 3600) is event
    assert shift_times({"expires_at": 5}, 0) == {"expires_at": 5}
    moved = shift_times({"a": {"expires_at": 5}, "b": {"c": 1}}, 1)
    assert moved == {"a": {"expires_at": 6}, "b": {"c": 1}}


def test_replay_moves_times_from_the_anchor_to_now() -> None:
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    assert seconds_since(anchor, anchor.timestamp() + 86_400.4) == 86_400
    assert seconds_since(None, 1e9) == 0
