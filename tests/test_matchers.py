"""Matchers: small pure functions that say why a frame does not match."""

from __future__ import annotations

import pytest

from fakeupstream.cassette import MatchMode
from fakeupstream.matchers import (
    differences,
    frame_differences,
    match_exact,
    match_subset,
    match_type,
)


def test_type_matcher_compares_only_the_type() -> None:
    assert match_type({"type": "a", "x": 1}, {"type": "a", "x": 2}) == []
    assert match_type({"type": "a"}, {"type": "b"}) == ["type: expected 'a', got 'b'"]
    assert match_type({"type": "a"}, {}) == ["type: expected 'a', got None"]


def test_subset_matcher_ignores_extra_keys_and_event_id() -> None:
    expected = {"type": "session.update", "event_id": "rec", "session": {"type": "realtime"}}
    actual = {
        "type": "session.update",
        "event_id": "other",
        "session": {"type": "realtime", "instructions": "x"},
    }
    assert match_subset(expected, actual) == []


def test_subset_matcher_reports_nested_differences() -> None:
    expected = {"type": "session.update", "session": {"output_modalities": ["text"]}}
    actual = {"type": "session.update", "session": {"output_modalities": ["audio"]}}
    assert match_subset(expected, actual) == [
        "session.output_modalities[0]: expected 'text', got 'audio'"
    ]
    assert match_subset({"a": {"b": 1}}, {"a": {}}) == ["a.b: missing (expected 1)"]


def test_exact_matcher_reports_unexpected_keys() -> None:
    assert match_exact({"type": "x"}, {"type": "x", "extra": 1}) == ["extra: unexpected (got 1)"]


def test_audio_payloads_are_ignored() -> None:
    expected = {"type": "input_audio_buffer.append", "audio": "AAAA"}
    actual = {"type": "input_audio_buffer.append", "audio": "BBBBBBBB"}
    assert match_exact(expected, actual) == []


def test_lists_compare_by_length_then_item() -> None:
    assert differences([1, 2], [1], subset=True, path="x") == [
        "x: expected 2 items, got 1 ([1, 2] vs [1])"
    ]


def test_booleans_are_not_numbers() -> None:
    assert differences(1, True, subset=False) == ["the event: expected 1, got True"]
    assert differences(True, True, subset=False) == []


@pytest.mark.parametrize(
    ("expected", "actual", "problem"),
    [
        ("text", "text", None),
        ("text", "other", "the frame: expected 'text', got 'other'"),
        (b"\x00", "text", "expected a binary frame, got a text frame"),
        ({"type": "a"}, "a", "expected a JSON event, got a text frame"),
    ],
)
def test_raw_frames(expected: object, actual: object, problem: str | None) -> None:
    found = frame_differences(MatchMode.EXACT, expected, actual)  # type: ignore[arg-type]
    assert found == ([] if problem is None else [problem])
