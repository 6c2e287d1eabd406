"""Connection planning without sockets or files: plain requests in, plans out."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from fakeupstream.access import TOKEN_HEADER, AccessPolicy
from fakeupstream.cassette import Cassette
from fakeupstream.exceptions import CassetteError, CassetteNotFound
from fakeupstream.planning import ConnectionPlanner, RecordPlan, Refused, ReplayPlan, RestPlan
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


def test_cassette_for_names_what_plan_would_load() -> None:
    planner = ConnectionPlanner(Source())
    assert planner.cassette_for("/cassettes/a/v1/realtime?m=1", selected="b") == "a"
    assert planner.cassette_for("/v1/realtime", selected="b") == "b"
    assert planner.cassette_for("/v1/realtime", selected=None) is None
    assert planner.cassette_for("/elsewhere", selected="b") is None
    assert planner.cassette_for("//[::1/v1/realtime", selected="b") is None
    assert planner.cassette_for("/cassettes/" + "x" * 300 + "/v1/realtime", selected=None) is None


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
