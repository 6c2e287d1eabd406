"""Every bundled cassette survives a client that does its housekeeping its own way.

Real clients send a `session.update` the recording does not have, cancel when nothing
runs, or leave out the recorded `session.update`. Under `emulate` (the default) each
bundled cassette still replays to the end with no mismatch and nothing unplayed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fakeupstream.cassette import Cassette, Direction, FrameStep
from fakeupstream.replay import Close, ReplaySession, Send
from fakeupstream.report import ConnectionReport
from fakeupstream.storage.library import CassetteLibrary

LIBRARY = CassetteLibrary()
NAMES = LIBRARY.names()
EXTRA = [
    {"type": "session.update", "session": {"type": "realtime", "instructions": "Be terse."}},
    {"type": "response.cancel"},
]


def client_steps(cassette: Cassette) -> list[FrameStep]:
    return [
        step
        for step in cassette.timeline
        if isinstance(step, FrameStep) and step.direction is Direction.CLIENT
    ]


def drive(cassette: Cassette, frames: list[Any]) -> tuple[ConnectionReport, list[dict[str, Any]]]:
    """Send ``frames`` in order, taking what is due after each; return the report and the
    events the client received."""
    report = ConnectionReport(id=1, cassette=cassette.name, path="/v1/realtime")
    session = ReplaySession(cassette.timeline, report, start=0.0, cassette=cassette.name)
    received: list[Send | Close] = session.due(0.0)
    for frame in frames:
        data = frame if isinstance(frame, str | bytes) else json.dumps(frame)
        session.receive(data, 0.0)
        received += session.due(0.0)
    report = session.finish(1000, "", by="client")
    events = [json.loads(a.data) for a in received if isinstance(a, Send)]
    return report, events


def recorded(step: FrameStep) -> Any:
    return step.data


@pytest.mark.parametrize("name", NAMES)
def test_extra_housekeeping_before_the_recorded_flow_is_emulated(name: str) -> None:
    cassette = LIBRARY.load(name)
    report, events = drive(cassette, [*EXTRA, *map(recorded, client_steps(cassette))])
    assert report.mismatches == []
    assert report.unplayed == []
    assert len(report.emulated) >= 1
    kinds = [event["type"] for event in events]
    assert "session.updated" in kinds
    cancel_errors = [
        e for e in events if e.get("error", {}).get("code") == "response_cancel_not_active"
    ]
    assert len(cancel_errors) == 1 and cancel_errors[0]["error"]["event_id"] is None


@pytest.mark.parametrize("name", NAMES)
def test_extra_housekeeping_between_turns_is_emulated(name: str) -> None:
    cassette = LIBRARY.load(name)
    frames: list[Any] = []
    for step in client_steps(cassette):
        frames.append(step.data)
        if step.event_type == "conversation.item.create":
            frames.append(EXTRA[0])  # a tracing update between the item and the response
    report, _ = drive(cassette, frames)
    assert report.mismatches == []
    assert report.unplayed == []


def leaves_out_session_updates(name: str) -> bool:
    steps = client_steps(LIBRARY.load(name))
    return any(
        step.event_type == "session.update" and index < len(steps) - 1
        for index, step in enumerate(steps)
    )


@pytest.mark.parametrize("name", [name for name in NAMES if leaves_out_session_updates(name)])
def test_a_recorded_session_update_the_client_leaves_out_is_passed_over(name: str) -> None:
    cassette = LIBRARY.load(name)
    frames = [step.data for step in client_steps(cassette) if step.event_type != "session.update"]
    report, events = drive(cassette, frames)
    assert report.mismatches == []
    assert report.unplayed == []
    assert any(line.startswith("skipped recorded 'session.update'") for line in report.emulated)
    assert "session.updated" not in [event["type"] for event in events]
