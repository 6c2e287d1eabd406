"""Encoded frames shared by the connections replaying one timeline: plain data, no sockets."""

from __future__ import annotations

import json
import textwrap

import pytest

from fakeupstream.cassette import Cassette, FrameStep
from fakeupstream.planning import ConnectionPlanner, ReplayPlan
from fakeupstream.replay import ReplaySession, Send
from fakeupstream.report import ConnectionReport
from fakeupstream.storage.yaml_reader import loads_cassette
from fakeupstream.wire import CLIENT_FRAME, CLOSE, SERVER_EVENT, SERVER_RAW, WireFrames

TIMELINE = """\
    version: 1
    timeline:
      - server: {type: session.created, session: {expires_at: 100, created_at: 0}}
      - server: {type: response.output_text.delta, delta: "é"}
    """


def cassette() -> Cassette:
    return loads_cassette(textwrap.dedent(TIMELINE), name="t")


def event(c: Cassette, index: int) -> dict[str, object]:
    step = c.timeline[index]
    assert isinstance(step, FrameStep) and isinstance(step.data, dict)
    return step.data


def test_a_frame_without_time_fields_is_encoded_once_whatever_the_shift() -> None:
    c = cassette()
    wire = WireFrames(c.timeline)
    first = wire.encoded(1, event(c, 1), 0)
    assert json.loads(first) == event(c, 1)
    assert '"é"' in first  # as the session sends it: UTF-8, not \u escapes
    assert wire.encoded(1, event(c, 1), 3600) is first


def test_a_frame_with_time_fields_is_encoded_per_shift_and_reused_within_one() -> None:
    c = cassette()
    wire = WireFrames(c.timeline)
    shifted = wire.encoded(0, event(c, 0), 1000)
    assert json.loads(shifted)["session"] == {"expires_at": 1100, "created_at": 0}
    assert wire.encoded(0, event(c, 0), 1000) is shifted
    assert json.loads(wire.encoded(0, event(c, 0), 2000))["session"]["expires_at"] == 2100
    assert json.loads(wire.encoded(0, event(c, 0), 0))["session"]["expires_at"] == 100
    assert event(c, 0)["session"] == {"expires_at": 100, "created_at": 0}  # never modified


def sent(session: ReplaySession) -> list[str]:
    return [action.data for action in session.due(0.0) if isinstance(action, Send)]


def test_sessions_sharing_wire_frames_send_what_a_session_of_its_own_sends() -> None:
    c = cassette()
    wire = WireFrames(c.timeline)

    def replay(shared: WireFrames | None) -> list[str]:
        report = ConnectionReport(id=1, cassette="t", path="/v1/realtime")
        session = ReplaySession(c.timeline, report, start=0.0, time_shift=500, wire=shared)
        return sent(session)

    alone, first, second = replay(None), replay(wire), replay(wire)
    assert alone == first == second
    assert json.loads(first[0])["session"]["expires_at"] == 600
    assert [a is b for a, b in zip(first, second, strict=True)] == [True, True]


def test_wire_frames_of_another_timeline_are_refused() -> None:
    report = ConnectionReport(id=1, cassette="t", path="/v1/realtime")
    with pytest.raises(ValueError, match="very steps"):
        ReplaySession(cassette().timeline, report, start=0.0, wire=WireFrames(()))


class OneCassette:
    def __init__(self, c: Cassette) -> None:
        self.cassette = c

    def load(self, name: str) -> Cassette:
        return self.cassette

    def names(self) -> list[str]:
        return [self.cassette.name]


def test_the_planner_gives_every_connection_to_a_timeline_the_same_wire_frames() -> None:
    c = cassette()
    planner = ConnectionPlanner(OneCassette(c))
    headers = [("Authorization", "Bearer sk-test")]
    plans = [planner.plan("/v1/realtime?model=m", headers, [], selected="t") for _ in range(3)]
    assert all(isinstance(plan, ReplayPlan) for plan in plans)
    wires = [plan.wire for plan in plans if isinstance(plan, ReplayPlan)]
    assert wires[0] is not None and wires[0].steps is c.timeline
    assert wires[1] is wires[0] and wires[2] is wires[0]


def test_a_handshake_answer_made_for_one_connection_is_not_kept() -> None:
    planner = ConnectionPlanner(OneCassette(cassette()))
    plan = planner.plan("/v1/realtime?model=m", [], [], selected="t")  # no key: GA answer
    assert isinstance(plan, ReplayPlan) and plan.wire is None


class EditedCassette(OneCassette):
    def load(self, name: str) -> Cassette:
        self.cassette = cassette()  # as if the file changed: a new timeline each time
        return self.cassette


def test_an_edited_cassette_gets_wire_frames_of_its_new_timeline() -> None:
    source = EditedCassette(cassette())
    planner = ConnectionPlanner(source)
    headers = [("Authorization", "Bearer sk-test")]
    for _ in range(3):
        plan = planner.plan("/v1/realtime?model=m", headers, [], selected="t")
        assert isinstance(plan, ReplayPlan) and plan.wire is not None
        assert plan.wire.steps is source.cassette.timeline


def test_each_steps_kind_is_worked_out_once_per_timeline() -> None:
    steps = (
        loads_cassette(
            textwrap.dedent(
                """\
            version: 1
            timeline:
              - server: {type: session.created}
              - client: {type: response.create}
              - server: "a raw text frame"
              - close: {code: 1000}
            """
            )
        )
        .episodes[0]
        .timeline
    )
    assert WireFrames(steps).kinds == (SERVER_EVENT, CLIENT_FRAME, SERVER_RAW, CLOSE)


def test_what_never_played_is_listed_from_one_list_per_timeline() -> None:
    c = cassette()
    wire = WireFrames(c.timeline)
    assert list(wire.unplayed_from(0)) == [wire.unplayed(0), wire.unplayed(1)]
    assert [u.step for u in wire.unplayed_from(1)] == [1]
    assert wire.unplayed_from(2) == ()
    assert wire.unplayed_from(1)[0] is wire.unplayed(1)  # made once, shared
