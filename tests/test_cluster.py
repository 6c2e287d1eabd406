"""The admin API across workers: which requests fan out and how answers merge (plain data)."""

from __future__ import annotations

import itertools
import json

import pytest

from fakeupstream.cluster import fans_out, merge_answers, worker_ids
from fakeupstream.responses import HttpResponse, error_response, json_response


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("POST", "/__fakeupstream/cassette?name=session", True),
        ("POST", "/__fakeupstream/reset", True),
        ("GET", "/__fakeupstream/report", True),
        ("GET", "/__fakeupstream/report/", True),
        ("GET", "/__fakeupstream/health", False),
        ("GET", "/__fakeupstream/cassettes", False),
        ("GET", "/__fakeupstream/cassette?name=session", False),  # a 405, answered locally
        ("GET", "/__fakeupstream/nope", False),
        ("POST", "/__fakeupstream/fault?kind=reset&after=2", True),
        ("DELETE", "/__fakeupstream/fault", True),
        ("GET", "/__fakeupstream/faults", False),
    ],
)
def test_only_requests_about_per_worker_state_fan_out(
    method: str, target: str, expected: bool
) -> None:
    assert fans_out(method, target) is expected


def test_worker_ids_never_repeat_across_workers() -> None:
    taken = [list(itertools.islice(worker_ids(index, 3), 4)) for index in range(3)]
    assert taken == [[1, 4, 7, 10], [2, 5, 8, 11], [3, 6, 9, 12]]
    with pytest.raises(ValueError, match=r"not in 0\.\.1"):
        worker_ids(2, 2)


def report(*ids: int) -> HttpResponse:
    return json_response(200, {"connections": [{"id": i, "cassette": "c"} for i in ids]})


def test_reports_merge_into_one_list_by_connection_id() -> None:
    answers = [report(2, 4), report(1, 3, 5)]
    merged = merge_answers("GET", "/__fakeupstream/report", answers)
    assert merged.status == 200
    assert [c["id"] for c in json.loads(merged.body)["connections"]] == [1, 2, 3, 4, 5]


def test_the_first_failure_is_the_answer() -> None:
    ok = json_response(200, {"cassette": "x"})
    missing = error_response(404, "no cassette named 'x'", "unknown_cassette")
    target = "/__fakeupstream/cassette?name=x"
    assert merge_answers("POST", target, [ok, missing, ok]) is missing
    assert merge_answers("POST", target, [ok, ok]) is ok


def test_no_answers_is_a_502() -> None:
    answer = merge_answers("POST", "/__fakeupstream/reset", [])
    assert answer.status == 502
    assert json.loads(answer.body)["error"]["code"] == "no_workers"
