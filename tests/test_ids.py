"""Fresh ids: consistent within a connection, different across connections, mapped back."""

from __future__ import annotations

import json
import string
import textwrap
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakeupstream.cassette import Direction, FrameStep
from fakeupstream.ids import IdRewriter, base62
from fakeupstream.replay import ReplaySession, Send
from fakeupstream.report import ConnectionReport
from fakeupstream.storage.library import CassetteLibrary
from fakeupstream.storage.yaml_reader import loads_cassette


def test_an_id_keeps_its_prefix_and_length_and_maps_back() -> None:
    rewriter = IdRewriter("1")
    fresh = rewriter.fresh("item_DAj1s0Zr6hT1mW8yXc3Ke")
    assert fresh.startswith("item_")
    assert len(fresh) == len("item_DAj1s0Zr6hT1mW8yXc3Ke")
    assert fresh != "item_DAj1s0Zr6hT1mW8yXc3Ke"
    assert rewriter.fresh("item_DAj1s0Zr6hT1mW8yXc3Ke") == fresh
    assert rewriter.incoming({"item_id": fresh}) == {"item_id": "item_DAj1s0Zr6hT1mW8yXc3Ke"}
    assert IdRewriter("2").fresh("item_DAj1s0Zr6hT1mW8yXc3Ke") != fresh
    assert IdRewriter("1").fresh("item_DAj1s0Zr6hT1mW8yXc3Ke") == fresh  # reproducible


def test_text_that_is_not_an_id_is_left_alone() -> None:
    rewriter = IdRewriter("1")
    event = {
        "type": "response.output_text.delta",
        "delta": "item_ by itself",
        "n": 3,
        "list": ["gpt-realtime", "resp_short"],
    }
    assert rewriter.outgoing(event) == event


def replay_with_fresh_ids(salt: str) -> list[dict[str, Any]]:
    cassette = CassetteLibrary().load("text_response")
    report = ConnectionReport(id=1, cassette="text_response", path="/")
    session = ReplaySession(cassette.timeline, report, start=0.0, fresh_ids=IdRewriter(salt))
    events = []
    for step in cassette.timeline:
        events += [json.loads(a.data) for a in session.due(0.0) if isinstance(a, Send)]
        if isinstance(step, FrameStep) and step.direction is Direction.CLIENT:
            session.receive(step.wire(), 0.0)
    events += [json.loads(a.data) for a in session.due(0.0) if isinstance(a, Send)]
    assert report.mismatches == []
    return events


def test_a_replay_with_fresh_ids_stays_consistent() -> None:
    frames = CassetteLibrary().load("text_response").server_frames()
    recorded = [step.data for step in frames if isinstance(step.data, dict)]
    first = replay_with_fresh_ids("a")
    assert len(first) == len(recorded)
    created = next(e for e in first if e["type"] == "response.created")
    recorded_created = next(e for e in recorded if e["type"] == "response.created")
    assert created["response"]["id"] != recorded_created["response"]["id"]
    for delta in (e for e in first if e["type"] == "response.output_text.delta"):
        assert delta["response_id"] == created["response"]["id"]
    assert len({e["event_id"] for e in first}) == len(first)
    second = replay_with_fresh_ids("b")
    assert {e["event_id"] for e in first}.isdisjoint(e["event_id"] for e in second)


def test_echoed_fresh_ids_match_recorded_expectations() -> None:
    cassette = loads_cassette(
        textwrap.dedent("""\
        version: 1
        match: subset
        timeline:
          - server: {type: conversation.item.added, item: {id: item_AAAAAAAAAAAAAAAAAAAAA}}
          - client: {type: conversation.item.truncate, item_id: item_AAAAAAAAAAAAAAAAAAAAA}
          - server: {type: conversation.item.truncated, item_id: item_AAAAAAAAAAAAAAAAAAAAA}
        """),
        name="t",
    )
    report = ConnectionReport(id=1, cassette="t", path="/")
    session = ReplaySession(
        cassette.timeline,
        report,
        start=0.0,
        default_match=cassette.match,
        fresh_ids=IdRewriter("x"),
    )
    [added] = [json.loads(a.data) for a in session.due(0.0) if isinstance(a, Send)]
    fresh = added["item"]["id"]
    assert fresh != "item_AAAAAAAAAAAAAAAAAAAAA"
    session.receive(json.dumps({"type": "conversation.item.truncate", "item_id": fresh}), 0.0)
    [truncated] = [json.loads(a.data) for a in session.due(0.0) if isinstance(a, Send)]
    assert truncated["item_id"] == fresh
    assert report.mismatches == []


@pytest.mark.parametrize("width", [1, 6, 13, 24])
@given(number=st.integers(min_value=-(2**160), max_value=2**160))
def test_base62_writes_the_number_modulo_its_width_in_62_letters_and_digits(
    width: int, number: int
) -> None:
    written = base62(number, width)
    assert len(written) == width
    alphabet = string.ascii_letters + string.digits
    assert sum(alphabet.index(c) * 62**i for i, c in enumerate(reversed(written))) == (
        number % 62**width
    )


def test_base62_pads_small_numbers_with_the_zero_digit() -> None:
    assert base62(0, 3) == "aaa"
    assert base62(63, 3) == "abb"
    assert base62(62**3, 3) == "aaa"
