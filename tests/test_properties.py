"""Property tests: arbitrary request lines, headers, queries and frames never raise.

Hypothesis throws whatever it likes at the pure deciders (the connection planner, the
admin router, the front door's head reader, the access policy, the replay engine) and at
the gateway's checks; each must answer with a value, and an HTTP answer below 500.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader
from websockets.http11 import Response

from fakeupstream.access import AccessPolicy
from fakeupstream.admin import handle_admin
from fakeupstream.cassette import Cassette
from fakeupstream.exceptions import CassetteNotFound
from fakeupstream.planning import Admission, ConnectionPlanner, RecordPlan, Refused, ReplayPlan
from fakeupstream.replay import ReplaySession
from fakeupstream.report import ConnectionReport
from fakeupstream.responses import HttpResponse, error_response
from fakeupstream.serve.front_door import _answer_head
from fakeupstream.storage.yaml_reader import loads_cassette
from proxy.config import ProxyConfig
from proxy.handshake import SessionRequest, check_request
from proxy.logs import redact_queries

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SESSION = loads_cassette(
    textwrap.dedent(
        """\
        version: 1
        timeline:
          - server: {type: session.created}
          - client: {type: session.update}
          - server: {type: session.updated}
        """
    ),
    name="session",
)

# Targets: mostly realtime-looking, with arbitrary pieces, percent escapes and brackets.
pieces = st.sampled_from(
    ["/", "/v1/realtime", "/cassettes/", "session", "?", "&", "=", "model", "%", "%ff", "[", "]",
     "::1", "//", "#", "api_key", "fakeupstream_token", "..", "\x00", "é", " "]
)  # fmt: skip
targets = st.one_of(
    st.lists(pieces, max_size=12).map("".join),
    st.text(max_size=80),
    st.text(max_size=40).map(lambda tail: "/v1/realtime?" + tail),
)
header_lists = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(
                ["Origin", "Host", "Authorization", "OpenAI-Beta", "X-FakeUpstream-Token"]
            ),
            st.text(max_size=20),
        ),
        st.text(max_size=60),
    ),
    max_size=6,
)


class Source:
    def load(self, name: str) -> Cassette:
        if name != "session":
            raise CassetteNotFound(name, ["session"])
        return SESSION

    def names(self) -> list[str]:
        return ["session"]


class State:
    def current_cassette(self) -> str | None:
        return None

    def use(self, name: str) -> None:
        Source().load(name)

    def reports(self) -> list[ConnectionReport]:
        return []

    def reset(self) -> None:
        pass

    def cassettes(self) -> list[tuple[str, str]]:
        return [("session", "")]


@PROPERTY
@given(
    targets,
    header_lists,
    st.lists(st.text(max_size=20), max_size=3),
    st.sampled_from([None, "session", "nope"]),
)
def test_the_planner_answers_every_upgrade_request(
    target: str, headers: list[tuple[str, str]], subprotocols: list[str], selected: str | None
) -> None:
    def planner() -> ConnectionPlanner:
        return ConnectionPlanner(
            Source(), records=lambda name: name == "nope", access=AccessPolicy(client_token="tok")
        )

    plan = planner().plan(target, headers, subprotocols, selected=selected)
    assert isinstance(plan, Refused | ReplayPlan | RecordPlan)
    if isinstance(plan, Refused):
        assert 400 <= plan.response.status < 500
    halves = planner()  # admitted, then prepared: the same plan
    admitted = halves.admit(target, headers, subprotocols, selected=selected)
    if isinstance(admitted, Admission):
        admitted = halves.prepare(admitted)
    assert describe(admitted) == describe(plan)


def describe(plan: object) -> object:
    if isinstance(plan, Refused):
        return (plan.response, None if plan.report is None else plan.report.to_json())
    if isinstance(plan, RecordPlan):
        return (plan.name, plan.request, plan.report.to_json())
    assert isinstance(plan, ReplayPlan)
    return (tuple(plan.steps), plan.faults, plan.session, plan.report.to_json(), plan.ids.next())


@PROPERTY
@given(st.sampled_from(["GET", "POST", "PUT", "DELETE", "", "get"]), targets)
def test_the_admin_router_answers_every_request(method: str, tail: str) -> None:
    response = handle_admin(method, "/__fakeupstream/" + tail, State())
    assert isinstance(response, HttpResponse)
    assert response.status < 500


@PROPERTY
@given(st.binary(max_size=300), header_lists)
def test_the_front_door_reads_any_head(raw: bytes, headers: list[tuple[str, str]]) -> None:
    def admin(method: str, target: str) -> HttpResponse:
        return handle_admin(method, target, State())

    def guard(target: str, pairs: list[tuple[str, str]]) -> HttpResponse | None:
        return AccessPolicy().check_admin(pairs)

    head = (
        raw
        + b"\r\n"
        + b"".join(
            f"{name}: {value}\r\n".encode("utf-8", "surrogatepass") for name, value in headers
        )
    )
    for data in (head, head + b"\r\n", b"GET /__fakeupstream/" + head + b"\r\n"):
        answer = _answer_head(data, admin, guard)
        if isinstance(answer, HttpResponse):
            assert answer.status < 500
            answer.encode()


@PROPERTY
@given(targets, header_lists)
def test_the_access_policy_never_raises(target: str, headers: list[tuple[str, str]]) -> None:
    policy = AccessPolicy(allow_origins=("https://app.example",), client_token="tok")
    for refused in (
        policy.check_origin(headers),
        policy.check_admin(headers),
        policy.check_token(target, headers),
    ):
        assert refused is None or refused.status == 403


frames = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=100),
    st.dictionaries(
        st.sampled_from(["type", "event_id", "session", "item", "x"]),
        st.one_of(
            st.sampled_from(["session.update", "response.create", "nope", ""]),
            st.integers(),
            st.none(),
            st.lists(st.integers(), max_size=3),
        ),
        max_size=4,
    ).map(json.dumps),
)


@PROPERTY
@given(st.lists(frames, max_size=8))
def test_the_replay_engine_takes_any_frames(messages: list[str | bytes]) -> None:
    report = ConnectionReport(id=1, cassette="session", path="/v1/realtime")
    session = ReplaySession(
        SESSION.timeline, report, start=0.0, speed=0.0, default_match=SESSION.match
    )
    for number, message in enumerate(messages):
        session.receive(message, float(number))
        session.due(float(number))
    session.finish(1000, "", by="client")
    assert report.to_json()["id"] == 1


@PROPERTY
@given(targets, header_lists)
def test_the_gateway_checks_answer_every_request(
    target: str, headers: list[tuple[str, str]]
) -> None:
    try:
        parsed = Headers(headers)
    except InvalidHeader:  # websockets never builds these from bytes on the wire
        assume(False)
    answer: Any = check_request(target, parsed, ProxyConfig("http://127.0.0.1:9"), {"KEY": "sk-x"})
    assert isinstance(answer, SessionRequest | Response)
    if isinstance(answer, Response):
        assert 400 <= answer.status_code < 500
    redact_queries(target)


def test_an_error_response_is_always_encodable() -> None:
    assert error_response(400, "é\x00", "x").encode().startswith(b"HTTP/1.1 400 ")
