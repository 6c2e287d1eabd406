"""Connection planning without sockets or files: plain requests in, plans out."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from fakeupstream.access import TOKEN_HEADER, AccessPolicy
from fakeupstream.cassette import Cassette
from fakeupstream.exceptions import CassetteError, CassetteNotFound
from fakeupstream.planning import (
    Admission,
    ConnectionPlanner,
    NeedsLoading,
    RecordPlan,
    Refused,
    ReplayPlan,
    RestPlan,
)
from fakeupstream.report import Outcome
from fakeupstream.responses import HttpResponse
from fakeupstream.storage.yaml_reader import loads_cassette

AUTH = [("Authorization", "Bearer sk-test")]
TWO_EPISODES = textwrap.dedent(
    """\
    version: 1
    connections:
      - timeline: [{server: {type: session.created, n: 1}}]
      - timeline: [{server: {type: session.created, n: 2}}]
    """
)
BETA = textwrap.dedent(
    """\
    version: 1
    handshake:
      rules:
        - when: {header: OpenAI-Beta}
          refuse: {status: 400, body: {error: {code: beta}}}
    timeline: []
    """
)


class Source:
    """An in-memory cassette source: name -> YAML text (or an exception to raise)."""

    def __init__(self, **texts: str) -> None:
        self.texts = texts
        self.loads: list[str] = []

    def load(self, name: str) -> Cassette:
        self.loads.append(name)
        if name not in self.texts:
            raise CassetteNotFound(name, self.names())
        if self.texts[name] == "broken":
            raise CassetteError("expected a mapping", line=1)
        return loads_cassette(self.texts[name], name=name)

    def names(self) -> list[str]:
        return sorted(self.texts)


def plan(planner: ConnectionPlanner, target: str, *, selected: str | None = None, headers=AUTH):  # type: ignore[no-untyped-def]
    return planner.plan(target, headers, [], selected=selected)


def body(refused: Refused) -> dict[str, object]:
    payload = json.loads(refused.response.body)
    assert isinstance(payload, dict)
    return payload["error"]  # type: ignore[no-any-return]


def test_a_path_that_is_not_realtime_is_refused_without_a_report() -> None:
    result = plan(ConnectionPlanner(Source()), "/v2/else")
    assert isinstance(result, Refused)
    assert result.report is None
    assert result.response.status == 404
    assert body(result)["code"] == "not_found"


def test_without_a_cassette_the_refusal_lists_those_that_exist() -> None:
    result = plan(ConnectionPlanner(Source(a=TWO_EPISODES)), "/v1/realtime?model=m")
    assert isinstance(result, Refused) and result.report is not None
    assert result.report.outcome is Outcome.REFUSED and result.report.finished
    assert body(result)["code"] == "no_cassette"
    assert body(result)["available"] == ["a"]


def test_the_path_names_the_cassette_before_the_selected_one() -> None:
    source = Source(a=TWO_EPISODES, b=TWO_EPISODES)
    result = plan(ConnectionPlanner(source), "/cassettes/b/v1/realtime?model=m", selected="a")
    assert isinstance(result, ReplayPlan)
    assert result.report.cassette == "b"
    assert result.report.path == "/cassettes/b/v1/realtime?model=m"


def test_unknown_and_malformed_cassettes_are_refused_with_reports() -> None:
    planner = ConnectionPlanner(Source(bad="broken"))
    unknown = plan(planner, "/cassettes/nope/v1/realtime?model=m")
    malformed = plan(planner, "/cassettes/bad/v1/realtime?model=m")
    assert isinstance(unknown, Refused) and unknown.response.status == 404
    assert body(unknown)["available"] == ["bad"]
    assert isinstance(malformed, Refused) and malformed.response.status == 500
    assert body(malformed)["code"] == "invalid_cassette"
    assert [unknown.report.id, malformed.report.id] == [1, 2]  # type: ignore[union-attr]


def test_connections_take_the_episodes_in_order_and_reset_starts_again() -> None:
    planner = ConnectionPlanner(Source(a=TWO_EPISODES))
    episodes = []
    for _ in range(3):
        result = plan(planner, "/v1/realtime?model=m", selected="a")
        assert isinstance(result, ReplayPlan)
        episodes.append((result.report.episode, result.steps[0].data["n"]))  # type: ignore[union-attr]
    planner.reset()
    again = plan(planner, "/v1/realtime?model=m", selected="a")
    assert isinstance(again, ReplayPlan)
    assert episodes == [(0, 1), (1, 2), (1, 2)]
    assert again.report.episode == 0


def test_handshake_rules_refuse_and_the_ga_emulation_answers() -> None:
    planner = ConnectionPlanner(Source(beta=BETA))
    refused = plan(
        planner, "/cassettes/beta/v1/realtime?model=m", headers=[*AUTH, ("OpenAI-Beta", "x")]
    )
    assert isinstance(refused, Refused) and refused.response.status == 400
    assert refused.report is not None and refused.report.answered_by == "handshake rule 1 (line 4)"
    answered = plan(planner, "/cassettes/beta/v1/realtime?model=m", headers=[])
    assert isinstance(answered, ReplayPlan)
    assert answered.report.outcome is Outcome.ANSWERED
    assert answered.steps[-1].summary().startswith("close 3000")


def test_recorded_cassettes_are_planned_for_the_relay_without_loading() -> None:
    source = Source()
    planner = ConnectionPlanner(source, records=lambda name: name == "new")
    result = plan(planner, "/cassettes/new/v1/realtime?model=m&api_key=sk-secret")
    assert isinstance(result, RecordPlan)
    assert (result.name, result.request.path) == ("new", "/v1/realtime")
    assert "sk-secret" not in result.report.path
    assert source.loads == []


@pytest.mark.parametrize("name", ["..", ".hidden", "a" * 300, "x.yaml"])
def test_names_that_cannot_be_files_are_never_recorded_or_loaded(name: str) -> None:
    source = Source()
    planner = ConnectionPlanner(source, records=lambda _name: True)
    assert not planner.records(name)


def test_the_report_keeps_the_upgrade_request_with_credentials_masked() -> None:
    planner = ConnectionPlanner(Source(session=TWO_EPISODES))
    headers = [
        ("Authorization", "Bearer sk-secret-key-0123456789"),
        ("OpenAI-Beta", "realtime=v1"),
        ("X-Api-Key", "sk-another-secret-0123456789"),
        ("User-Agent", "gateway/1.0"),
    ]
    planned = planner.plan(
        "/cassettes/session/v1/realtime?model=gpt-realtime&api_key=sk-q",
        headers,
        ["realtime", "openai-insecure-api-key.ek_0123456789abcdef"],
        selected=None,
    )
    seen = planned.report.request
    assert seen is not None
    assert seen.path == "/cassettes/session/v1/realtime"
    assert seen.query == (("model", "gpt-realtime"), ("api_key", "REDACTED"))
    assert seen.headers == (
        ("Authorization", "REDACTED"),
        ("OpenAI-Beta", "realtime=v1"),
        ("X-Api-Key", "REDACTED"),
        ("User-Agent", "gateway/1.0"),
    )
    assert seen.header("openai-beta") == "realtime=v1"
    assert seen.header("Origin") is None
    assert seen.subprotocols == ("realtime", "openai-insecure-api-key.REDACTED")
    assert "sk-" not in json.dumps(planned.report.to_json())


def test_http_answers_never_show_the_cassette_directory() -> None:
    class Hidden(Source):
        def load(self, name: str) -> Cassette:
            if name == "broken":
                raise CassetteError("bad", path=Path("/home/me/secret/broken.yaml"), line=3)
            raise CassetteNotFound(name, self.names(), Path("/home/me/secret"))

    planner = ConnectionPlanner(Hidden())
    missing = plan(planner, "/cassettes/nope/v1/realtime?model=m")
    broken = plan(planner, "/cassettes/broken/v1/realtime?model=m")
    assert isinstance(missing, Refused) and isinstance(broken, Refused)
    assert body(missing)["message"] == "no cassette named 'nope'; available: (none)"
    assert body(broken)["message"] == "cassette 'broken' is malformed: broken.yaml:3: bad"
    assert b"/home/me" not in missing.response.body + broken.response.body


def test_admit_asks_to_load_only_what_plan_would_load() -> None:
    planner = ConnectionPlanner(Source())

    def to_load(target: str, selected: str | None) -> str | None:
        result = planner.admit(target, AUTH, [], selected=selected, cached=lambda _: None)
        return result.name if isinstance(result, NeedsLoading) else None

    assert to_load("/cassettes/a/v1/realtime?m=1", "b") == "a"
    assert to_load("/v1/realtime", "b") == "b"
    assert to_load("/v1/realtime", None) is None
    assert to_load("/elsewhere", "b") is None
    assert to_load("//[::1/v1/realtime", "b") is None
    assert to_load("/cassettes/" + "x" * 300 + "/v1/realtime", None) is None


# -- REST requests --------------------------------------------------------------------


def test_a_rest_request_belongs_to_the_cassette_in_its_path_else_the_selected_one() -> None:
    planner = ConnectionPlanner(Source())
    assert planner.rest_cassette("/cassettes/a/b/v1/realtime/calls", selected="s") == "a/b"
    assert planner.rest_cassette("/v1/realtime/client_secrets", selected="s") == "s"
    assert planner.rest_cassette("/v1/models", selected=None) is None
    assert planner.rest_cassette("/cassettes/../v1/models", selected=None) is None


def test_a_rest_request_is_replayed_from_its_cassette_or_from_state() -> None:
    source = Source(session=TWO_EPISODES, broken="broken")
    planner = ConnectionPlanner(source)
    replayed = planner.plan_rest("session", "/v1/models", AUTH)
    assert isinstance(replayed, RestPlan) and replayed.record is None
    assert replayed.cassette is not None and replayed.cassette.name == "session"
    for name in ("broken", "missing", None):
        assert planner.plan_rest(name, "/v1/models", AUTH) == RestPlan()


def test_a_rest_request_to_a_recorded_cassette_is_recorded_by_its_own_clients_only() -> None:
    planner = ConnectionPlanner(
        Source(), records=lambda name: name == "new", access=AccessPolicy(client_token="t0ken")
    )
    target = "/cassettes/new/v1/realtime/client_secrets"
    refused = planner.plan_rest("new", target, AUTH)
    assert isinstance(refused, HttpResponse) and refused.status == 403
    with_token = [*AUTH, (TOKEN_HEADER, "t0ken")]
    assert planner.plan_rest("new", target, with_token) == RestPlan(record="new")
    page = [*with_token, ("Origin", "https://evil.example")]
    refused = planner.plan_rest("new", target, page)
    assert isinstance(refused, HttpResponse) and refused.status == 403


FAULTY = textwrap.dedent(
    """\
    version: 1
    faults: [{at: upgrade, refuse: 503}]
    timeline: [{server: {type: session.created}}]
    """
)
REQUESTS = [
    ("/v1/realtime?model=m", AUTH, "a"),
    ("/v1/realtime", AUTH, "a"),  # no model: a GA answer after the 101
    ("/v1/realtime?model=m", [], "a"),  # no key: the same
    ("/cassettes/a/v1/realtime?model=m&api-key=sk-secret", AUTH, None),
    ("/v1/realtime?model=m", [*AUTH, ("OpenAI-Beta", "realtime=v1")], "beta"),  # a rule
    ("/v1/realtime?model=m", AUTH, "faulty"),  # an upgrade fault
    ("/v1/realtime?model=m", [*AUTH, ("Origin", "https://evil.example")], "a"),
    ("/v1/realtime?model=m", AUTH, "missing"),
    ("/v1/realtime?model=m", AUTH, "broken"),
    ("/v1/realtime?model=m", AUTH, None),
    ("/v2/else", AUTH, "a"),
    ("/v1/realtime?model=m", AUTH, "rec"),
]


def outcome(result: object) -> object:
    """What a plan says, comparable across planners (ids and reports as dicts)."""
    assert not isinstance(result, Admission)
    if isinstance(result, Refused):
        return (
            "refused",
            result.response,
            None if result.report is None else result.report.to_json(),
        )
    if isinstance(result, RecordPlan):
        return ("record", result.name, result.request, result.report.to_json())
    assert isinstance(result, ReplayPlan)
    return (
        "replay",
        result.cassette.name,
        tuple(result.steps),
        result.faults,
        result.session,
        result.report.to_json(),
        result.ids.next(),
    )


def test_admitting_then_preparing_plans_what_plan_plans() -> None:
    def planner() -> ConnectionPlanner:
        source = Source(a=TWO_EPISODES, beta=BETA, faulty=FAULTY, broken="broken")
        return ConnectionPlanner(source, records=lambda name: name == "rec")

    whole, halves = planner(), planner()
    admitted = 0
    for target, headers, selected in REQUESTS * 2:  # twice: the second episodes too
        expected = whole.plan(target, headers, [], selected=selected)
        result = halves.admit(target, headers, [], selected=selected)
        if isinstance(result, Admission):
            admitted += 1
            result = halves.prepare(result)
        assert outcome(result) == outcome(expected), (target, selected)
    assert admitted == 8  # the first four requests, twice: nothing unusual about them


def test_admission_takes_the_id_and_episode_at_once_and_leaves_the_rest_for_later() -> None:
    source = Source(a=TWO_EPISODES)
    planner = ConnectionPlanner(source)
    first = planner.admit("/v1/realtime?model=m", AUTH, [], selected="a")
    second = planner.admit("/v1/realtime?model=m", AUTH, [], selected="a")
    assert isinstance(first, Admission) and isinstance(second, Admission)
    assert (first.id, first.episode, second.id, second.episode) == (1, 0, 2, 1)
    later = planner.prepare(second)  # prepared in any order, each keeps what it took
    sooner = planner.prepare(first)
    assert (sooner.report.id, sooner.report.episode) == (1, 0)
    assert (later.report.id, later.report.episode) == (2, 1)
    assert later.report.request is not None and later.report.outcome is Outcome.REPLAYED


def test_a_cassette_not_in_memory_is_loaded_before_anything_is_taken() -> None:
    source = Source(a=TWO_EPISODES)
    planner = ConnectionPlanner(source)
    waiting = planner.admit("/v1/realtime?model=m", AUTH, [], selected="a", cached=lambda _: None)
    assert waiting == NeedsLoading("a") and source.loads == []
    loaded = planner.admit("/v1/realtime?model=m", AUTH, [], selected="a", cached=source.load)
    assert isinstance(loaded, Admission) and (loaded.id, loaded.episode) == (1, 0)


def test_a_cassette_whose_last_load_failed_is_refused_at_once() -> None:
    source = Source(a="broken")

    def remembered(name: str) -> Cassette | None:
        raise CassetteError("expected a mapping", line=1)

    refused = ConnectionPlanner(source).admit(
        "/v1/realtime?model=m", AUTH, [], selected="a", cached=remembered
    )
    assert isinstance(refused, Refused) and refused.response.status == 500
