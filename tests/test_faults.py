"""The fault model and its decisions, with plain values (no sockets, no clock)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fakeupstream.exceptions import FaultError
from fakeupstream.faults import (
    ErrorKind,
    Fault,
    FaultBoard,
    FaultKind,
    FaultSchedule,
    answer_fault_request,
    build_fault,
    error_fault_event,
    parse_fault_query,
    refusal,
)
from fakeupstream.ga import EventIds

KINDS = (
    "refuse, delay, accept_then_close, close, reset, stall, drip, drop, duplicate, "
    "truncate, error, no_pong"
)


def event(kind: str) -> str:
    return json.dumps({"type": kind})


# -- building and validating ----------------------------------------------------------------


def test_build_keeps_only_what_was_given() -> None:
    fault = build_fault("close", {"after": 1, "code": 4000, "reason": "custom"})
    assert fault == Fault(FaultKind.CLOSE, after=1, code=4000, reason="custom")
    assert fault.to_dict() == {"kind": "close", "after": 1, "code": 4000, "reason": "custom"}
    assert fault.describe() == "close after=1 code=4000 reason=custom"
    assert fault.close == (4000, "custom")


@pytest.mark.parametrize(
    ("kind", "params", "message", "param"),
    [
        ("bogus", {}, f"unknown fault kind 'bogus'; expected one of: {KINDS}", "kind"),
        (
            "reset",
            {"status": 429},
            "fault 'reset' takes no parameter 'status'; it takes: after, event",
            "status",
        ),
        ("delay", {}, "fault 'delay' needs 'seconds'", "seconds"),
        ("drip", {"after": 1}, "fault 'drip' needs 'rate'", "rate"),
        ("error", {}, "fault 'error' needs 'error'", "error"),
        ("reset", {"after": 1, "event": "response.create"}, "one trigger", "event"),
        ("reset", {"after": -1}, "after must be 0 or more, got -1", "after"),
        ("reset", {"after": True}, "after must be an integer, got True", "after"),
        ("reset", {"after": 1.5}, "after must be an integer, got 1.5", "after"),
        ("reset", {"event": ""}, "event must name a client event type", "event"),
        ("close", {"code": 999}, "code must be from 1000 to 4999, got 999", "code"),
        ("close", {"code": 5000}, "code must be from 1000 to 4999, got 5000", "code"),
        ("close", {"code": 1005}, "code 1005 cannot be sent in a close frame", "code"),
        ("close", {"reason": "é" * 62}, "reason is at most 123 bytes", "reason"),
        ("refuse", {"status": 101}, "status must be from 200 to 599, got 101", "status"),
        ("refuse", {"seconds": 1.5}, "whole seconds", "seconds"),
        ("stall", {"seconds": -1}, "seconds must be a number of seconds, zero or more", "seconds"),
        ("stall", {"seconds": float("nan")}, "zero or more", "seconds"),
        (
            "stall",
            {"seconds": "soon"},
            "seconds must be a number of seconds, got 'soon'",
            "seconds",
        ),
        ("drip", {"rate": 0}, "rate must be 1 or more, got 0", "rate"),
        (
            "error",
            {"error": "oops"},
            "unknown error 'oops'; expected one of: server_error, rate_limit_exceeded, "
            "session_expired",
            "error",
        ),
    ],
)
def test_a_bad_fault_says_what_is_valid(
    kind: str, params: dict[str, Any], message: str, param: str
) -> None:
    with pytest.raises(FaultError) as caught:
        build_fault(kind, params)
    assert message in str(caught.value)
    assert caught.value.param == param


def test_defaults_of_the_closing_kinds() -> None:
    assert build_fault("close", {}).close == (1011, "")
    assert build_fault("accept_then_close", {"code": 3000}).close == (3000, "")
    expired = build_fault("error", {"error": "session_expired"})
    assert expired.close == (4000, "invalid_request_error.session_expired")
    assert build_fault("error", {"error": "session_expired", "code": 4001}).close == (
        4001,
        "invalid_request_error.session_expired",
    )
    assert build_fault("error", {"error": "server_error"}).close is None  # not fatal
    assert build_fault("error", {"error": "server_error", "code": 1011}).close == (1011, "")
    assert build_fault("reset", {}).close is None


def test_only_the_upgrade_kinds_act_at_the_upgrade() -> None:
    assert {kind for kind in FaultKind if kind.at_upgrade} == {
        FaultKind.REFUSE,
        FaultKind.DELAY,
        FaultKind.ACCEPT_THEN_CLOSE,
    }


# -- the admin API's query -------------------------------------------------------------------


def test_query_values_are_converted_from_text() -> None:
    fault, count = parse_fault_query(
        {"kind": "refuse", "status": "429", "seconds": "7", "reason": "slow down"}
    )
    assert fault == Fault(FaultKind.REFUSE, status=429, seconds=7.0, reason="slow down")
    assert count == 1
    fault, count = parse_fault_query({"kind": "stall", "after": "3", "count": "2"})
    assert (fault, count) == (Fault(FaultKind.STALL, after=3), 2)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, f"missing query parameter 'kind'; expected one of: {KINDS}"),
        ({"kind": "reset", "after": "two"}, "after must be an integer, got 'two'"),
        ({"kind": "reset", "after": ""}, "after must be an integer, got ''"),
        ({"kind": "reset", "count": "0"}, "count must be 1 or more, got 0"),
        ({"kind": "close", "code": "70000"}, "code must be from 1000 to 4999"),
    ],
)
def test_a_bad_query_is_refused(query: dict[str, str], message: str) -> None:
    with pytest.raises(FaultError, match=message):
        parse_fault_query(query)


# -- what the faults send ----------------------------------------------------------------------


def test_refusal_has_the_openai_error_shape() -> None:
    response = refusal(build_fault("refuse", {"status": 429, "seconds": 7}))
    assert response.status == 429
    assert ("Retry-After", "7") in response.headers
    assert json.loads(response.body) == {
        "error": {
            "type": "requests",
            "code": "rate_limit_exceeded",
            "message": "Rate limit reached for requests. Please try again later.",
            "param": None,
        }
    }
    default = refusal(build_fault("refuse", {}))
    assert default.status == 503
    assert json.loads(default.body)["error"]["type"] == "server_error"
    assert not any(name == "Retry-After" for name, _ in default.headers)
    other = refusal(build_fault("refuse", {"status": 403, "reason": "nope"}))
    assert json.loads(other.body)["error"]["message"] == "nope"


@pytest.mark.parametrize(
    ("error", "type_", "code"),
    [
        (ErrorKind.SERVER_ERROR, "server_error", None),
        (ErrorKind.RATE_LIMIT_EXCEEDED, "invalid_request_error", "rate_limit_exceeded"),
        (ErrorKind.SESSION_EXPIRED, "invalid_request_error", "session_expired"),
    ],
)
def test_error_events_have_the_ga_shape(error: ErrorKind, type_: str, code: str | None) -> None:
    sent = error_fault_event(Fault(FaultKind.ERROR, error=error), EventIds(7))
    assert sent["type"] == "error"
    assert sent["event_id"].startswith("event_") and len(sent["event_id"]) == 27
    assert sent["error"]["type"] == type_
    assert sent["error"]["code"] == code
    assert sent["error"]["message"]
    assert sent["error"]["param"] is None and sent["error"]["event_id"] is None


# -- the board: armed for the next connections ----------------------------------------------


def test_board_arms_for_count_connections() -> None:
    board = FaultBoard()
    reset, stall = Fault(FaultKind.RESET, after=2), Fault(FaultKind.STALL)
    board.arm(reset)
    board.arm(stall, 2)
    assert board.armed() == [(reset, 1), (stall, 2)]
    assert board.take() == (reset, stall)
    assert board.take() == (stall,)
    assert board.take() == ()
    board.arm(reset, 3)
    assert board.disarm() == 1
    assert board.take() == ()
    with pytest.raises(FaultError, match="count must be 1 or more"):
        board.arm(reset, 0)


def test_admin_answers_arm_list_disarm() -> None:
    board = FaultBoard()
    armed = answer_fault_request("POST", {"kind": "reset", "after": "2", "count": "3"}, board)
    assert armed.status == 200
    assert json.loads(armed.body) == {"armed": {"kind": "reset", "after": 2, "count": 3}}
    listing = answer_fault_request("GET", {}, board)
    assert json.loads(listing.body) == {"faults": [{"kind": "reset", "after": 2, "count": 3}]}
    assert json.loads(answer_fault_request("DELETE", {}, board).body) == {"disarmed": 1}
    assert board.armed() == []


@pytest.mark.parametrize(
    "query",
    [
        {"kind": "bogus"},
        {"kind": "reset", "after": "-1"},
        {"kind": "close", "code": "5000"},
        {"kind": "close", "code": "999"},
        {"kind": "refuse", "status": "abc"},
    ],
)
def test_admin_refuses_a_bad_fault_and_arms_nothing(query: dict[str, str]) -> None:
    board = FaultBoard()
    response = answer_fault_request("POST", query, board)
    assert response.status == 400
    error = json.loads(response.body)["error"]
    assert error["code"] == "invalid_fault"
    assert error["kinds"] == KINDS.split(", ")
    assert "expected one of" in error["message"] or "must be" in error["message"]
    assert board.armed() == []


# -- the schedule: when a session fault fires ------------------------------------------------


def test_after_n_fires_once_n_frames_are_sent() -> None:
    schedule = FaultSchedule([Fault(FaultKind.RESET, after=2)])
    assert schedule.active
    assert schedule.due() == []
    assert schedule.next_frame("a") == ["a"]
    assert schedule.due() == []
    assert schedule.next_frame("b") == ["b"]
    assert schedule.due() == [Fault(FaultKind.RESET, after=2)]
    assert schedule.due() == []  # each fault fires once
    assert not schedule.active


def test_after_zero_is_the_default_and_fires_at_once() -> None:
    schedule = FaultSchedule([Fault(FaultKind.NO_PONG)])
    assert schedule.due() == [Fault(FaultKind.NO_PONG)]


def test_event_fires_when_the_client_sends_that_event_type() -> None:
    fault = Fault(FaultKind.CLOSE, event="response.create")
    schedule = FaultSchedule([fault])
    schedule.next_frame("x")
    assert schedule.due() == []
    schedule.received(event("session.update"))
    schedule.received(b"binary")
    schedule.received("not json")
    assert schedule.due() == []
    schedule.received(event("response.create"))
    assert schedule.due() == [fault]


def test_drop_duplicate_truncate_act_on_the_frame_after_n() -> None:
    faults = [
        Fault(FaultKind.DROP, after=1),
        Fault(FaultKind.DUPLICATE, after=2),
        Fault(FaultKind.TRUNCATE, after=4),
    ]
    schedule = FaultSchedule(faults)
    sent: list[str | bytes] = []
    for frame in ["f0", "f1", "f2", "f3", '{"type":"x"}', "f5"]:
        schedule.due()
        sent.extend(schedule.next_frame(frame))
    # f1 dropped (not counted as sent); f2 is the 2nd frame sent, so f3 is duplicated.
    assert sent == ["f0", "f2", "f3", "f3", '{"type', "f5"]
    assert schedule.sent == 6


def test_drip_sets_the_rate_from_then_on() -> None:
    schedule = FaultSchedule([Fault(FaultKind.DRIP, after=1, rate=100)])
    schedule.due()
    assert schedule.rate is None
    schedule.next_frame("a")
    schedule.due()
    assert schedule.rate == 100
    assert schedule.active


def test_upgrade_faults_are_not_session_faults() -> None:
    refuse = Fault(FaultKind.REFUSE, status=429)
    schedule = FaultSchedule([Fault(FaultKind.DELAY, seconds=1), refuse])
    assert schedule.upgrade == Fault(FaultKind.DELAY, seconds=1)
    assert not schedule.active
    assert schedule.due() == []
    assert FaultSchedule([]).upgrade is None
