"""The replay engine's unexpected-event policies, with plain lists and a made-up clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fakeupstream.exceptions import CassetteError
from fakeupstream.replay import Close, ReplaySession, Send
from fakeupstream.report import ConnectionReport
from fakeupstream.storage.library import CassetteLibrary
from fakeupstream.storage.yaml_dumper import dumps_cassette
from fakeupstream.storage.yaml_reader import loads_cassette
from fakeupstream.unexpected import OnUnexpected, close_reason, parse_on_unexpected

SESSION_UPDATE = {"type": "session.update", "session": {"type": "realtime"}}
USER_TEXT = {
    "type": "conversation.item.create",
    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
}


def replay(name: str, policy: OnUnexpected = OnUnexpected.EMULATE) -> ReplaySession:
    cassette = CassetteLibrary().load(name)
    report = ConnectionReport(id=1, cassette=name, path="/v1/realtime")
    return ReplaySession(cassette.timeline, report, start=0.0, cassette=name, on_unexpected=policy)


def exchange(s: ReplaySession, event: dict[str, Any]) -> list[Send | Close]:
    s.receive(json.dumps(event), 0.0)
    return s.due(0.0)


def events(actions: list[Send | Close]) -> list[dict[str, Any]]:
    return [json.loads(a.data) for a in actions if isinstance(a, Send)]


def test_emulate_answers_an_extra_session_update_and_replay_carries_on() -> None:
    s = replay("conversation_item_added")
    assert [e["type"] for e in events(s.due(0.0))] == ["session.created"]
    updated = events(
        exchange(
            s, {**SESSION_UPDATE, "session": {"type": "realtime", "output_modalities": ["text"]}}
        )
    )
    assert [e["type"] for e in updated] == ["session.updated"]
    assert updated[0]["session"]["output_modalities"] == ["text"]
    # The recorded session id: the model started from the recorded session.created.
    assert updated[0]["session"]["id"] == "sess_DAp02x0nUtZMaVxgDnT9V"
    assert [e["type"] for e in events(exchange(s, USER_TEXT))] == [
        "conversation.item.added",
        "conversation.item.done",
    ]
    report = s.finish(1000, "", by="client")
    assert report.mismatches == [] and report.unplayed == []
    assert report.emulated == ["'session.update' at step 1 answered by the session model"]


def test_emulate_passes_over_a_recorded_session_update_the_client_left_out() -> None:
    s = replay("text_response")
    s.due(0.0)
    answers = events(exchange(s, USER_TEXT))
    # The recorded session.updated is not played: the client never asked for it.
    assert [e["type"] for e in answers] == ["conversation.item.added", "conversation.item.done"]
    played = events(exchange(s, {"type": "response.create"}))
    assert played[-1]["type"] in ("response.done", "rate_limits.updated")
    report = s.finish(1000, "", by="client")
    assert report.mismatches == [] and report.unplayed == []
    [skipped] = report.emulated
    assert skipped.startswith("skipped recorded 'session.update' (line ")


def test_emulate_still_reports_what_the_model_cannot_answer() -> None:
    s = replay("conversation_item_added")
    s.due(0.0)
    [error] = events(exchange(s, {"type": "response.create", "event_id": "c7"}))
    assert error["error"]["code"] == "unexpected_client_event"
    assert error["error"]["event_id"] == "c7"
    [mismatch] = s.finish(None, None, by="client").mismatches
    assert mismatch.step == 1


def test_emulate_keeps_content_mismatches_of_the_expected_type() -> None:
    s = replay("text_response")
    s.due(0.0)
    s.receive(json.dumps({"type": "session.update", "session": {"type": "realtime"}}), 0.0)
    assert s.finish(None, None, by="client").mismatches == []  # `type` matcher: it matches


def test_error_policy_keeps_todays_behaviour() -> None:
    s = replay("conversation_item_added", OnUnexpected.ERROR)
    s.due(0.0)
    [error] = events(exchange(s, SESSION_UPDATE))
    assert error["error"]["code"] == "unexpected_client_event"
    report = s.finish(None, None, by="client")
    assert len(report.mismatches) == 1 and report.emulated == []


def test_close_policy_sends_the_error_then_closes_1008_naming_step_and_line() -> None:
    s = replay("conversation_item_added", OnUnexpected.CLOSE)
    s.due(0.0)
    actions = exchange(s, SESSION_UPDATE)
    assert [e["error"]["code"] for e in events(actions)] == ["unexpected_client_event"]
    close = actions[-1]
    assert isinstance(close, Close) and close.code == 1008
    assert close.reason.startswith("unexpected client event 'session.update' at step 1 (line ")
    assert s.closed and s.due(1.0) == []


def test_a_cancel_with_nothing_running_is_answered_like_the_live_api() -> None:
    s = replay("session")
    s.due(0.0)
    [error] = events(exchange(s, {"type": "response.cancel"}))
    assert error["error"]["code"] == "response_cancel_not_active"
    assert error["error"]["event_id"] is None


def test_a_recorded_error_echoes_null_when_the_client_sent_no_event_id() -> None:
    s = replay("invalid_event")
    s.due(0.0)
    [error] = events(exchange(s, {"type": "totally.bogus.event"}))
    assert error["error"]["event_id"] is None
    s = replay("invalid_event")
    s.due(0.0)
    [error] = events(exchange(s, {"type": "totally.bogus.event", "event_id": "mine"}))
    assert error["error"]["event_id"] == "mine"


def test_the_close_reason_fits_in_123_bytes() -> None:
    reason = close_reason("x" * 500, 12345, 67890)
    assert len(reason.encode()) <= 123
    assert reason.endswith("at step 12345 (line 67890)")
    assert close_reason("session.update", None, None) == (
        "unexpected client event 'session.update' after the last step"
    )


def test_policies_parse_in_any_case_and_list_the_valid_ones() -> None:
    assert parse_on_unexpected(" Close ") is OnUnexpected.CLOSE
    with pytest.raises(ValueError, match="expected one of: emulate, error, close"):
        parse_on_unexpected("ignore")


def test_a_cassette_names_its_policy_and_keeps_it_through_dump_and_load() -> None:
    text = "version: 1\non_unexpected: close\ntimeline: []\n"
    cassette = loads_cassette(text, name="t")
    assert cassette.on_unexpected is OnUnexpected.CLOSE
    assert loads_cassette(dumps_cassette(cassette), name="t") == cassette
    assert loads_cassette("version: 1\ntimeline: []\n", name="t").on_unexpected is None
    with pytest.raises(CassetteError, match=r":2:16: unknown unexpected-event policy 'never'"):
        loads_cassette("version: 1\non_unexpected: never\ntimeline: []\n", name="t")
