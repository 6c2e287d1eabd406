"""Faults through the pytest plugin: the ``fault`` marker and ``fakeupstream.fault(...)``."""

from __future__ import annotations

import textwrap

import pytest

INI = """\
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""

CLIENT = """\
import json
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

AUTH = {"Authorization": "Bearer sk-test"}

def session(url):
    '''Every event until the server closes, then the close frame it sent (or None).'''
    events = []
    with connect(url + "/v1/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
        try:
            while True:
                events.append(json.loads(ws.recv(timeout=5)))
                if events[-1]["type"] == "session.created" and len(events) == 1:
                    ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
                elif events[-1]["type"] == "session.updated":
                    return events, None
        except ConnectionClosed as closed:
            return events, closed.rcvd
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(client=CLIENT)
    return pytester


def test_the_marker_arms_a_fault_for_one_test(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import pytest
        from client import session

        @pytest.mark.cassette("session")
        @pytest.mark.fault("close", after=1, code=4000, reason="custom")
        def test_faulted(fakeupstream):
            events, close = session(fakeupstream.url)
            assert [e["type"] for e in events] == ["session.created"]
            assert (close.code, close.reason) == (4000, "custom")
            [report] = fakeupstream.reports()
            [fired] = report.faults
            assert fired.fault == {"kind": "close", "after": 1, "code": 4000, "reason": "custom"}
            assert fired.frames == 1

        @pytest.mark.cassette("session")
        def test_the_next_test_is_not_faulted(fakeupstream):
            events, close = session(fakeupstream.url)
            assert close is None
            assert fakeupstream.armed_faults() == []
        """)
    )
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_fixture_arms_faults_and_count_spans_connections(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import pytest
        from client import session

        @pytest.mark.cassette("session")
        def test_reset_twice_then_fine(fakeupstream):
            fakeupstream.fault("reset", after=1, count=2)
            for _ in range(2):
                events, close = session(fakeupstream.url)
                assert len(events) == 1 and close is None  # no close frame: a reset
            events, close = session(fakeupstream.url)
            assert events[-1]["type"] == "session.updated"
            assert [len(r.faults) for r in fakeupstream.reports()] == [1, 1, 0]

        @pytest.mark.cassette("session")
        @pytest.mark.fault("error", event="session.update", error="session_expired")
        def test_on_a_client_event(fakeupstream):
            events, close = session(fakeupstream.url)
            assert events[-1]["error"]["code"] == "session_expired"
            assert close.code == 4000
        """)
    )
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('"explode"', "unknown fault kind 'explode'; expected one of: refuse, delay"),
        ('"reset", after=-1', "after must be 0 or more, got -1"),
        ('"close", code=5000', "code must be from 1000 to 4999, got 5000"),
        ('"reset", status=429', "fault 'reset' takes no parameter 'status'; it takes: after"),
        ('"reset", count=0', "count must be 1 or more, got 0"),
        ("", "takes one fault kind, got ()"),
    ],
)
def test_a_bad_marker_fails_the_setup_and_says_why(
    project: pytest.Pytester, marker: str, message: str
) -> None:
    project.makepyfile(
        test_it=textwrap.dedent(f"""\
        import pytest

        @pytest.mark.cassette("session")
        @pytest.mark.fault({marker})
        def test_it(fakeupstream):
            pass
        """)
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{message}*"])
