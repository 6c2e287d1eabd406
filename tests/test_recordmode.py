"""Record modes: the enum, its resolver, and what each mode records and how it saves."""

from __future__ import annotations

import pytest

from fakeupstream.recordmode import (
    RecordMode,
    SaveAction,
    parse_record_mode,
    save_action,
    should_record,
)


def test_modes_are_the_ones_pytest_recording_users_know() -> None:
    assert [mode.value for mode in RecordMode] == ["none", "once", "new_episodes", "all"]


@pytest.mark.parametrize("text", ["none", "once", "new_episodes", "all", " ALL ", "Once"])
def test_parse_accepts_every_mode_in_any_case(text: str) -> None:
    assert parse_record_mode(text) is RecordMode(text.strip().lower())


def test_parse_rejects_an_unknown_mode_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown record mode 'rewrite'") as caught:
        parse_record_mode("rewrite")
    assert "expected one of: none, once, new_episodes, all" in str(caught.value)


@pytest.mark.parametrize(
    ("mode", "exists", "records"),
    [
        (RecordMode.NONE, False, False),
        (RecordMode.NONE, True, False),
        (RecordMode.ONCE, False, True),
        (RecordMode.ONCE, True, False),
        (RecordMode.NEW_EPISODES, False, True),
        (RecordMode.NEW_EPISODES, True, True),
        (RecordMode.ALL, False, True),
        (RecordMode.ALL, True, True),
    ],
)
def test_should_record(mode: RecordMode, exists: bool, records: bool) -> None:
    assert should_record(mode, exists) is records


@pytest.mark.parametrize(
    ("mode", "first", "action"),
    [
        (RecordMode.ALL, True, SaveAction.REPLACE),
        (RecordMode.ALL, False, SaveAction.APPEND),
        (RecordMode.ONCE, True, SaveAction.APPEND),
        (RecordMode.ONCE, False, SaveAction.APPEND),
        (RecordMode.NEW_EPISODES, True, SaveAction.APPEND),
        (RecordMode.NEW_EPISODES, False, SaveAction.APPEND),
    ],
)
def test_only_all_replaces_and_only_with_the_first_save(
    mode: RecordMode, first: bool, action: SaveAction
) -> None:
    assert save_action(mode, first_save_of_run=first) is action
