"""Rules: answers to events the recording does not have, with plain events in and out."""

from __future__ import annotations

import asyncio
import json
import textwrap
from typing import Any

import pytest

from fakeupstream import FakeUpstream
from fakeupstream.ga import EventIds
from fakeupstream.replay import Close, ReplaySession, Send
from fakeupstream.report import ConnectionReport
from fakeupstream.rule_replies import rule_answer
from fakeupstream.rules import Rule, RuleClose
from fakeupstream.session_model import SessionModel
from fakeupstream.storage.library import CassetteLibrary
from fakeupstream.storage.sdkcheck import validate_server_event
from fakeupstream.storage.yaml_dumper import dumps_cassette
from fakeupstream.storage.yaml_reader import loads_cassette
from fakeupstream.unexpected import OnUnexpected

from .helpers import TIMEOUT, recv_event, send_event, ws_connect

USER = {
    "type": "conversation.item.create",
    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
}
RULES = """\
    version: 1
    timeline:
      - server: {type: session.created, session: {type: realtime, output_modalities: [text]}}
    rules:
      - event: response.create
        when: {text: "(?i)weather"}
        reply: {function_call: {name: get_weather, arguments: '{"city": "Paris"}'}}
      - event: response.create
        when: {text: "^bye$"}
        reply: {close: {code: 4001, reason: bye}}
      - event: response.create
        when: {text: "^oops$"}
        reply: {error: {code: server_error, message: "The server had an error."}}
      - event: response.create
        reply: {text: "Echo: {last_user_text}"}
    """


def replay(text: str, policy: OnUnexpected = OnUnexpected.EMULATE) -> ReplaySession:
    cassette = loads_cassette(textwrap.dedent(text), name="t")
    report = ConnectionReport(id=1, cassette="t", path="/v1/realtime")
    return ReplaySession(
        cassette.timeline, report, start=0.0, rules=cassette.rules, on_unexpected=policy
    )


def say(s: ReplaySession, text: str) -> list[Send | Close]:
    item = {**USER, "item": {**USER["item"], "content": [{"type": "input_text", "text": text}]}}
    s.receive(json.dumps(item), 0.0)
    s.receive(json.dumps({"type": "response.create"}), 0.0)
    return s.due(0.0)


def events(actions: list[Send | Close]) -> list[dict[str, Any]]:
    return [json.loads(a.data) for a in actions if isinstance(a, Send)]


@pytest.mark.parametrize("policy", list(OnUnexpected))
def test_rules_answer_in_order_under_every_policy(policy: OnUnexpected) -> None:
    s = replay(RULES, policy)
    s.due(0.0)
    if policy is not OnUnexpected.EMULATE:
        return  # the item.create is unexpected there; the rule itself is checked below
    text = events(say(s, "hello"))
    deltas = "".join(e["delta"] for e in text if e["type"] == "response.output_text.delta")
    assert deltas == "Echo: hello"
    call = events(say(s, "Weather?"))
    [done] = [e for e in call if e["type"] == "response.function_call_arguments.done"]
    assert (done["name"], done["arguments"]) == ("get_weather", '{"city": "Paris"}')
    [error] = events(say(s, "oops"))[-1:]
    assert error["error"]["code"] == "server_error" and error["error"]["event_id"] is None
    closing = say(s, "bye")
    assert closing[-1] == Close(4001, "bye")
    report = s.finish(4001, "bye", by="server")
    assert report.mismatches == []
    assert any(e.startswith("'response.create' answered by rule 4 (line ") for e in report.emulated)


def test_a_rule_answers_even_under_the_error_policy() -> None:
    s = replay(
        """\
        version: 1
        timeline: []
        rules:
          - event: response.create
            reply: {text: ok}
        """,
        OnUnexpected.ERROR,
    )
    s.receive(json.dumps({"type": "response.create"}), 0.0)
    assert events(s.due(0.0))[-2]["type"] == "response.done"
    assert s.finish(None, None, by="client").mismatches == []


def test_rules_survive_dump_and_load() -> None:
    cassette = loads_cassette(textwrap.dedent(RULES), name="t")
    assert loads_cassette(dumps_cassette(cassette), name="t") == cassette
    simulated = CassetteLibrary().load("simulated")
    assert simulated.simulated and simulated.timeline == ()
    assert loads_cassette(dumps_cassette(simulated), name="simulated") == simulated


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("{event: response.create}", "missing required key 'reply'"),
        ("{event: response.create, reply: {}}", "needs exactly one of: text, audio"),
        ("{event: response.create, reply: {text: a, audio: b}}", "needs exactly one of"),
        ("{event: x, when: {text: '('}, reply: {text: a}}", "invalid regular expression"),
        ("{event: x, reply: {close: {code: 1005}}}", "1005 is not a close code that can be sent"),
    ],
)
def test_bad_rules_are_refused_with_the_line(rule: str, problem: str) -> None:
    with pytest.raises(Exception, match=problem) as info:
        loads_cassette(f"version: 1\nrules:\n  - {rule}\n", name="t")
    assert "<cassette>:3:" in str(info.value)


def test_a_rule_needs_exactly_one_reply() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        Rule(event="response.create")
    with pytest.raises(ValueError, match="invalid regular expression"):
        Rule(event="response.create", text="a", text_matches="(")


def test_every_synthesized_event_validates_against_the_sdk_ga_types() -> None:
    model = SessionModel(EventIds(1), 1)
    model.answer({**USER})
    model.answer(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "output_modalities": ["text"],
                "tools": [{"type": "function", "name": "f"}],
            },
        }
    )
    made: list[dict[str, Any]] = []
    for rule in (
        Rule(event="response.create", text="You said: {last_user_text}"),
        Rule(event="response.create", audio="Hello there"),
        Rule(event="response.create", function_call=(None, "{}")),
        Rule(event="response.create", error=("server_error", "boom")),
        Rule(event="response.create", close=RuleClose(1000)),
    ):
        answered = rule_answer((rule,), {"type": "response.create", "event_id": "c1"}, model)
        assert answered is not None
        made += answered[1]
    kinds = {event["type"] for event in made}
    assert {"response.output_text.delta", "response.output_audio.delta"} <= kinds
    assert "response.function_call_arguments.done" in kinds and "error" in kinds
    assert [p for event in made if (p := validate_server_event(event))] == []
    assert made[-1]["error"]["event_id"] == "c1"


@pytest.mark.asyncio
async def test_a_test_adds_rules_through_the_python_api() -> None:
    async with FakeUpstream() as fake:
        fake.on("response.create", text="Scripted: {last_user_text}")
        url = f"{fake.url}/cassettes/conversation_item_added/v1/realtime?model=m"
        async with ws_connect(url) as ws:
            await recv_event(ws)
            await send_event(ws, USER)
            await recv_event(ws)
            await recv_event(ws)
            await send_event(ws, {"type": "response.create"})
            text = ""
            while (event := await recv_event(ws))["type"] != "response.done":
                # The recorded session speaks (output_modalities: audio): the text comes
                # back as audio with that transcript.
                if event["type"] == "response.output_audio_transcript.delta":
                    text += event["delta"]
        # The model knows the conversation as the recording played it ("Hello there").
        assert text == "Scripted: Hello there"
        await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
        [report] = fake.reports()
        assert report.mismatches == [] and len(report.emulated) == 1
        fake.reset()
        with pytest.raises(ValueError, match="exactly one of"):
            fake.on("response.create")
        with pytest.raises(ValueError, match="close code"):
            fake.on("response.create", close=(1005, ""))
