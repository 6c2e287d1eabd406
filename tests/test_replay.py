"""The sans-I/O replay engine, driven with plain lists and a made-up clock: no sockets."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from fakeupstream.cassette import Cassette, Direction, FrameStep, MatchMode
from fakeupstream.replay import Close, ReplaySession, Send
from fakeupstream.report import ConnectionReport
from fakeupstream.storage.library import CassetteLibrary
from fakeupstream.storage.yaml_reader import loads_cassette
from fakeupstream.unexpected import OnUnexpected


def cassette(text: str) -> Cassette:
    return loads_cassette(textwrap.dedent(text), name="t")


def session(c: Cassette, *, speed: float = 0.0, **kwargs: Any) -> ReplaySession:
    report = ConnectionReport(id=1, cassette=c.name, path="/v1/realtime")
    return ReplaySession(
        c.timeline, report, start=0.0, speed=speed, default_match=c.match, cassette=c.name, **kwargs
    )


def types(actions: list[Close | Send]) -> list[str]:
    out = []
    for action in actions:
        if isinstance(action, Close):
            out.append(f"close {action.code}")
        else:
            assert isinstance(action.data, str)
            out.append(json.loads(action.data)["type"])
    return out


def send(s: ReplaySession, event: dict[str, Any], now: float = 0.0) -> None:
    s.receive(json.dumps(event), now)


CHAT = """\
    version: 1
    timeline:
      - server: {type: session.created}
        delay: 0.5
      - client: {type: response.create}
      - server: {type: response.created}
        delay: 1.0
      - server: {type: response.output_text.delta, delta: a}
        delay: 0.25
      - server: {type: response.done}
        delay: 0.25
    """


def test_server_frames_wait_for_the_client_frames_recorded_before_them() -> None:
    s = session(cassette(CHAT))
    assert types(s.due(0.0)) == ["session.created"]
    assert s.due(100.0) == []
    assert s.deadline() is None  # waiting on the client, not on time
    send(s, {"type": "response.create"}, now=100.0)
    assert types(s.due(100.0)) == [
        "response.created",
        "response.output_text.delta",
        "response.done",
    ]
    assert s.deadline() is None
    report = s.finish(1000, "", by="client")
    assert report.played == report.total == 5
    assert report.unplayed == []
    assert report.mismatches == []


def test_speed_scales_the_recorded_delays() -> None:
    s = session(cassette(CHAT), speed=2.0)
    assert s.due(0.0) == []
    assert s.deadline() == 1.0
    assert types(s.due(1.0)) == ["session.created"]
    send(s, {"type": "response.create"}, now=5.0)
    assert s.deadline() == 7.0  # measured from the client's frame, not from the last send
    assert s.due(6.9) == []
    assert types(s.due(7.0)) == ["response.created"]
    # Late polling does not accumulate drift: each step is due relative to the previous.
    assert types(s.due(9.0)) == ["response.output_text.delta", "response.done"]


def test_a_client_frame_may_arrive_before_the_server_frames_recorded_ahead_of_it() -> None:
    s = session(cassette(CHAT), speed=1.0)
    send(s, {"type": "response.create"}, now=0.1)  # before session.created is due
    assert s.due(0.1) == []
    assert types(s.due(0.5)) == ["session.created"]
    assert s.deadline() == 1.5
    assert types(s.due(2.0)) == ["response.created", "response.output_text.delta", "response.done"]


def test_multi_turn_replays_every_frame_in_order() -> None:
    c = CassetteLibrary().load("multi_turn")
    s = session(c)
    sent: list[str] = []
    for step in c.timeline:
        sent += types(s.due(0.0))
        if isinstance(step, FrameStep) and step.direction is Direction.CLIENT:
            s.receive(step.wire(), 0.0)
    sent += types(s.due(0.0))
    recorded = [step.event_type for step in c.server_frames()]
    assert sent == recorded
    assert sent.count("response.done") == 2
    report = s.finish(1000, "", by="client")
    assert report.mismatches == [] and report.unplayed == []


def test_cancel_mid_stream_cuts_the_stream_where_it_was_recorded() -> None:
    c = CassetteLibrary().load("response_cancel")
    s = session(c)
    s.due(0.0)
    send(s, {"type": "session.update", "session": {"type": "realtime"}})
    send(s, {"type": "conversation.item.create", "item": {}})
    send(s, {"type": "response.create"})
    before = types(s.due(0.0))
    assert before[-1] == "response.output_text.delta"
    assert "response.done" not in before  # waits for the cancel
    send(s, {"type": "response.cancel"})
    after = types(s.due(0.0))
    assert after[-2:] == ["response.done", "rate_limits.updated"]
    assert s.due(0.0) == []


def test_an_unexpected_client_event_gets_a_ga_error_and_a_mismatch_with_a_diff() -> None:
    s = session(cassette(CHAT), on_unexpected=OnUnexpected.ERROR)
    s.due(0.0)
    send(s, {"type": "session.update", "event_id": "mine"})
    [action] = s.due(0.0)
    assert isinstance(action, Send) and isinstance(action.data, str)
    error = json.loads(action.data)
    assert error["type"] == "error"
    assert error["error"]["code"] == "unexpected_client_event"
    assert error["error"]["event_id"] == "mine"
    assert "'response.create' (step 1)" in error["error"]["message"]
    [mismatch] = s.finish(1000, "", by="client").mismatches
    assert mismatch.step == 1
    assert mismatch.line == 5
    assert mismatch.differences == ["type: expected 'response.create', got 'session.update'"]
    assert "step 1 (line 5)" in mismatch.describe()


def test_a_mismatch_hints_at_a_skipped_step() -> None:
    s = session(
        cassette("""\
        version: 1
        timeline:
          - client: {type: session.update}
          - client: {type: response.create}
        """),
        on_unexpected=OnUnexpected.ERROR,
    )
    send(s, {"type": "response.create"})
    [mismatch] = s.finish(None, None, by="client").mismatches
    assert mismatch.hint == "it matches step 1: did the client skip 'session.update'?"


def test_subset_matching_reports_field_differences() -> None:
    s = session(
        cassette("""\
        version: 1
        match: subset
        timeline:
          - client: {type: session.update, session: {output_modalities: [text]}}
        """)
    )
    send(s, {"type": "session.update", "session": {"output_modalities": ["audio"]}})
    [mismatch] = s.finish(None, None, by="client").mismatches
    assert mismatch.differences == ["session.output_modalities[0]: expected 'text', got 'audio'"]


def test_ga_protocol_errors_are_answered_without_a_mismatch() -> None:
    s = session(cassette(CHAT))
    s.due(0.0)
    s.receive("not json", 0.0)
    s.receive(b"\x00\x01", 0.0)
    send(s, {"type": "totally.bogus.event", "event_id": "evt_1"})
    send(s, {"no": "type"})
    codes = [json.loads(a.data)["error"] for a in s.due(0.0) if isinstance(a, Send)]
    assert [e["code"] for e in codes] == [
        "invalid_json",
        "invalid_event",
        "invalid_value",
        "invalid_event",
    ]
    assert codes[2]["param"] == "type" and codes[2]["event_id"] == "evt_1"
    assert "'response.create', and 'response.cancel'." in codes[2]["message"]
    send(s, {"type": "response.create"})  # the session is still usable
    assert types(s.due(0.0))[0] == "response.created"
    report = s.finish(1000, "", by="client")
    assert report.mismatches == []
    assert len(report.protocol_errors) == 4


def test_a_recorded_error_echoes_the_event_id_the_client_actually_sent() -> None:
    s = session(CassetteLibrary().load("invalid_event"))
    s.due(0.0)
    send(s, {"type": "totally.bogus.event", "event_id": "evt_mine"})
    [error] = [json.loads(a.data) for a in s.due(0.0) if isinstance(a, Send)]
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["event_id"] == "evt_mine"


def test_a_close_step_ends_the_session_and_later_input_is_ignored() -> None:
    s = session(
        cassette("""\
        version: 1
        timeline:
          - server: {type: error}
          - close: {code: 4000, reason: bye}
        """)
    )
    assert types(s.due(0.0)) == ["error", "close 4000"]
    assert s.closed
    send(s, {"type": "response.create"})
    assert s.due(1.0) == []
    assert s.deadline() is None


def test_finish_lists_what_never_played() -> None:
    s = session(cassette(CHAT))
    s.due(0.0)
    report = s.finish(1000, "", by="client")
    assert [(u.step, u.direction) for u in report.unplayed] == [
        (1, "client"),
        (2, "server"),
        (3, "server"),
        (4, "server"),
    ]
    assert report.unplayed[0].describe() == (
        "step 1 (line 5): client 'response.create' never sent by the client"
    )
    assert s.finish(1000, "", by="client") is report  # idempotent


def test_time_fields_shift_to_the_replay_date() -> None:
    s = session(
        cassette("""\
        version: 1
        timeline:
          - server: {type: session.created, session: {expires_at: 100, created_at: 0, n: 5}}
        """),
        time_shift=1000,
    )
    [action] = s.due(0.0)
    assert isinstance(action, Send) and isinstance(action.data, str)
    session_object = json.loads(action.data)["session"]
    assert session_object == {"expires_at": 1100, "created_at": 0, "n": 5}


def test_the_server_can_override_the_cassette_matcher() -> None:
    c = cassette("""\
        version: 1
        timeline:
          - client: {type: session.update, session: {type: realtime}}
        """)
    report = ConnectionReport(id=1, cassette="t", path="/")
    s = ReplaySession(c.timeline, report, start=0.0, default_match=MatchMode.EXACT)
    send(s, {"type": "session.update", "session": {"type": "realtime", "x": 1}})
    assert report.mismatches[0].differences == ["session.x: unexpected (got 1)"]


def test_negative_speed_is_refused() -> None:
    with pytest.raises(ValueError, match="speed"):
        session(cassette(CHAT), speed=-1)


AUDIO = """\
    version: 1
    timeline:
      - client: {type: input_audio_buffer.append, audio: AAAA}
      - client: {type: input_audio_buffer.append, audio: BBBB}
      - server: {type: input_audio_buffer.speech_started}
      - client: {type: input_audio_buffer.append, audio: CCCC}
      - client: {type: input_audio_buffer.commit}
      - server: {type: input_audio_buffer.committed}
    """

APPEND = {"type": "input_audio_buffer.append", "audio": "QUJD"}


@pytest.mark.parametrize("chunks", [1, 2, 3, 7])
def test_audio_may_arrive_in_more_or_fewer_chunks_than_recorded(chunks: int) -> None:
    s = session(cassette(AUDIO))
    sent = []
    for _ in range(chunks):
        send(s, APPEND)
        sent += types(s.due(0.0))
    send(s, {"type": "input_audio_buffer.commit"})
    sent += types(s.due(0.0))
    assert sent == ["input_audio_buffer.speech_started", "input_audio_buffer.committed"]
    report = s.finish(1000, "", by="client")
    assert report.mismatches == []
    assert report.unplayed == []


def test_a_missing_audio_run_is_still_a_mismatch() -> None:
    s = session(cassette(AUDIO), on_unexpected=OnUnexpected.ERROR)
    send(s, {"type": "input_audio_buffer.commit"})
    [mismatch] = s.finish(None, None, by="client").mismatches
    assert mismatch.differences == [
        "type: expected 'input_audio_buffer.append', got 'input_audio_buffer.commit'"
    ]


def test_a_limit_hands_out_what_is_due_a_few_steps_at_a_time() -> None:
    deltas = "".join(f"  - server: {{type: d, n: {n}}}\n" for n in range(5))
    s = session(cassette(f"version: 1\ntimeline:\n{deltas}  - close: {{code: 1000}}\n"))
    batches = [s.due(0.0, limit=2) for _ in range(4)]
    assert [len(batch) for batch in batches] == [2, 2, 2, 0]
    sent = [json.loads(a.data)["n"] for batch in batches for a in batch if isinstance(a, Send)]
    assert sent == [0, 1, 2, 3, 4]
    assert isinstance(batches[2][-1], Close) and s.closed
    assert s.finish(1000, "", by="server").played == 6


def test_a_limit_counts_recorded_steps_not_what_the_session_made_up() -> None:
    s = session(cassette(CHAT))
    send(s, {"type": "no.such.event"})  # answered with an error, made up here
    assert types(s.due(0.0, limit=1)) == ["error", "session.created"]
