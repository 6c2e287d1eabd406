"""Handshake decisions: cassette rules first, then the GA emulation, then replay."""

from __future__ import annotations

import textwrap

import pytest

from fakeupstream.cassette import CloseStep, FrameStep
from fakeupstream.exceptions import CassetteError
from fakeupstream.ga import EventIds
from fakeupstream.handshake import Answer, Refuse, Replay, decide, has_credentials
from fakeupstream.storage.library import CassetteLibrary
from fakeupstream.storage.yaml_dumper import dumps_cassette
from fakeupstream.storage.yaml_reader import loads_cassette
from fakeupstream.upgrade import UpgradeRequest

AUTH = ("Authorization", "Bearer sk-test")


def request(
    target: str = "/v1/realtime?model=gpt-realtime",
    *headers: tuple[str, str],
    subprotocols: tuple[str, ...] = (),
) -> UpgradeRequest:
    return UpgradeRequest.from_target(target, list(headers), subprotocols)


@pytest.mark.parametrize(
    ("headers", "subprotocols", "ok"),
    [
        ([AUTH], (), True),
        ([("authorization", "bearer k")], (), True),
        ([("Authorization", "Basic abc")], (), True),
        ([("Authorization", "Bearer ")], (), False),
        ([("Authorization", "Token k")], (), False),
        ([], ("realtime", "openai-insecure-api-key.ek_123"), True),
        ([], ("realtime", "openai-insecure-api-key."), False),
        ([], (), False),
    ],
)
def test_credentials(
    headers: list[tuple[str, str]], subprotocols: tuple[str, ...], ok: bool
) -> None:
    assert has_credentials(request("/v1/realtime", *headers, subprotocols=subprotocols)) is ok


@pytest.mark.parametrize("name", ["OpenAI-Beta", "openai-beta", "OPENAI-BETA"])
@pytest.mark.parametrize("value", ["realtime=v1", "assistants=v2", ""])
def test_any_beta_header_in_any_case_is_rejected_like_the_ga_api(name: str, value: str) -> None:
    cassette = CassetteLibrary().load("beta_header_rejected")
    decision = decide(
        cassette.handshake,
        request("/v1/realtime?model=gpt-realtime", AUTH, (name, value)),
        EventIds(1),
    )
    assert isinstance(decision, Answer)
    error, close = decision.steps
    assert isinstance(error, FrameStep) and isinstance(error.data, dict)
    assert error.data["error"]["code"] == "beta_api_shape_disabled"
    assert error.data["error"]["param"] is None and error.data["error"]["event_id"] is None
    assert close == CloseStep(code=4000, reason="invalid_request_error.beta_api_shape_disabled")


def test_without_the_beta_header_the_session_replays() -> None:
    cassette = CassetteLibrary().load("beta_header_rejected")
    assert (
        decide(cassette.handshake, request("/v1/realtime?model=m", AUTH), EventIds(1)) == Replay()
    )


def test_missing_auth_then_missing_model() -> None:
    cassette = CassetteLibrary().load("session")
    no_auth = decide(cassette.handshake, request("/v1/realtime"), EventIds(1))
    assert isinstance(no_auth, Answer)
    assert no_auth.steps[-1] == CloseStep(code=3000, reason="invalid_request_error")
    first = no_auth.steps[0]
    assert isinstance(first, FrameStep) and isinstance(first.data, dict)
    assert first.data["error"] == {
        "type": "invalid_request_error",
        "code": None,
        "message": "Missing bearer or basic authentication in header",
        "param": None,
        "event_id": None,
    }
    no_model = decide(cassette.handshake, request("/v1/realtime", AUTH), EventIds(1))
    assert isinstance(no_model, Answer)
    assert no_model.steps[-1] == CloseStep(code=4000, reason="invalid_request_error.missing_model")


@pytest.mark.parametrize("query", ["model=m", "call_id=rtc_1", "intent=transcription"])
def test_model_call_id_or_intent_is_enough(query: str) -> None:
    cassette = CassetteLibrary().load("session")
    assert isinstance(
        decide(cassette.handshake, request(f"/v1/realtime?{query}", AUTH), EventIds(1)), Replay
    )


def test_rules_can_refuse_with_http_and_override_the_ga_emulation() -> None:
    cassette = loads_cassette(
        textwrap.dedent("""\
        version: 1
        handshake:
          expect: {query: {model: gpt-realtime}, headers: {X-Team: a}}
          rules:
            - when: {missing_header: Authorization}
              refuse: {status: 401, body: {error: {message: no key}}}
            - when: {query: {model: gpt-nope}}
              refuse: {status: 404, body: {error: {code: model_not_found}}}
        timeline: []
        """),
        name="t",
    )
    refused = decide(cassette.handshake, request("/v1/realtime?model=m"), EventIds(1))
    assert refused == Refuse(401, {"error": {"message": "no key"}}, (), "handshake rule 1 (line 5)")
    not_found = decide(
        cassette.handshake, request("/v1/realtime?model=gpt-nope", AUTH), EventIds(1)
    )
    assert isinstance(not_found, Refuse) and not_found.status == 404
    replay = decide(
        cassette.handshake, request("/v1/realtime?model=other", AUTH, ("x-team", "b")), EventIds(1)
    )
    assert replay == Replay(
        (
            "query model: expected 'gpt-realtime', got 'other'",
            "header X-Team: expected 'a', got 'b'",
        )
    )


@pytest.mark.parametrize("name", CassetteLibrary().names())
@pytest.mark.parametrize("header", ["OpenAI-Beta", "openai-beta"])
def test_every_cassette_rejects_the_beta_header_by_default(name: str, header: str) -> None:
    cassette = CassetteLibrary().load(name)
    decision = decide(
        cassette.handshake,
        request("/v1/realtime?model=gpt-realtime", AUTH, (header, "realtime=v1")),
        EventIds(1),
    )
    assert isinstance(decision, Answer)
    error, close = decision.steps
    assert isinstance(error, FrameStep) and isinstance(error.data, dict)
    assert error.data["error"] == {
        "type": "invalid_request_error",
        "code": "beta_api_shape_disabled",
        "message": "The Realtime Beta API is no longer supported. "
        "Please use /v1/realtime for the GA API.",
        "param": None,
        "event_id": None,
    }
    assert close == CloseStep(code=4000, reason="invalid_request_error.beta_api_shape_disabled")


ACCEPTS_BETA = """\
    version: 1
    handshake:
      accept_beta: true
    timeline: []
    """


def test_accept_beta_replays_a_request_with_the_beta_header() -> None:
    cassette = loads_cassette(textwrap.dedent(ACCEPTS_BETA), name="t")
    assert cassette.handshake.accept_beta
    decision = decide(
        cassette.handshake,
        request("/v1/realtime?model=gpt-realtime", AUTH, ("OpenAI-Beta", "realtime=v1")),
        EventIds(1),
    )
    assert decision == Replay()


def test_credentials_are_checked_before_the_beta_header() -> None:
    cassette = CassetteLibrary().load("text_response")
    decision = decide(
        cassette.handshake, request("/v1/realtime?model=m", ("OpenAI-Beta", "v")), EventIds(1)
    )
    assert isinstance(decision, Answer)
    assert decision.steps[-1] == CloseStep(code=3000, reason="invalid_request_error")


def test_accept_beta_must_be_a_boolean() -> None:
    with pytest.raises(CassetteError, match=r":3:16: expected true or false"):
        loads_cassette(textwrap.dedent(ACCEPTS_BETA).replace("true", "yes please"), name="t")


def test_accept_beta_survives_dump_and_load() -> None:
    cassette = loads_cassette(textwrap.dedent(ACCEPTS_BETA), name="t")
    text = dumps_cassette(cassette)
    assert "accept_beta: true" in text
    assert loads_cassette(text, name="t") == cassette
