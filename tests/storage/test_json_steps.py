"""Steps written as one line of JSON: PyYAML and the fast reader read them alike.

The property tests load the same text twice, with the fast reader (``fast=True``,
:mod:`fakeupstream.storage.yaml_skeleton`) and with YAML alone (``fast=False``), under
libyaml's loader and PyYAML's pure-Python one, and require the same answer: equal
cassettes (compared by ``repr``, so ``1``, ``1.0`` and ``True`` differ) with equal
step lines, or the same error with the same ``file:line:column``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakeupstream.cassette import (
    Cassette,
    CloseStep,
    Direction,
    Episode,
    FrameStep,
    MatchMode,
    Step,
)
from fakeupstream.exceptions import CassetteError
from fakeupstream.storage import yaml_reader
from fakeupstream.storage.json_steps import (
    MAX_DEPTH,
    MAX_KEY,
    NotJSONStep,
    StepDecoder,
    encode_step,
)
from fakeupstream.storage.yaml_dumper import dumps_cassette
from fakeupstream.storage.yaml_reader import loads_cassette

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PATH = Path("cassettes/t.yaml")
LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])

# Characters where JSON and YAML 1.1 part ways, or that YAML reads as breaks.
SPECIAL = [*'"\\/:#{}[],&*!|>%@`\' ',
    "\t", "\r", "\n", "\x00", "\x1f", "\x7f", "\x85", "\x9f", "\xa0", "\u2028", "\u2029",
    "\ufeff", "\ufffd", "\ufffe", "\uffff", "\U0001f600", "é", "\ue000",
]  # fmt: skip
texts = st.text(st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(SPECIAL)))
keys = st.one_of(
    texts,
    st.sampled_from(["type", "$sidecar", "<<", "event_id", "true", "1", ""]),
    st.text("k", min_size=MAX_KEY - 2, max_size=MAX_KEY + 2),
)
numbers = st.one_of(
    st.integers(),
    st.floats(),  # NaN and infinities included: both readings must refuse them alike
    st.sampled_from([0, -0.0, 1e-06, 1.5e-07, 1e16, -2.5e300, 5e-324, 2**70, 10**30]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
events = st.dictionaries(keys, json_values, max_size=5).map(lambda extra: {"type": "t", **extra})
delays = st.sampled_from([0.0, 0.25, 1e-06, 3.0, 12345.678901, 1e16])


@st.composite
def frame_steps(draw: st.DrawFn) -> Step:
    direction = draw(st.sampled_from(Direction))
    data: Any = draw(st.one_of(events, texts, st.binary(max_size=8)))
    match = draw(st.none() | st.sampled_from(MatchMode)) if direction is Direction.CLIENT else None
    return FrameStep(direction, data, delay=draw(delays), match=match)


timelines = st.lists(frame_steps(), max_size=5).map(tuple)


def nested(depth: int) -> Any:
    """A list in a list ... ``depth`` deep."""
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def outcome(text: str, *, fast: bool) -> tuple[str, ...]:
    """What loading ``text`` gives: the cassette and its step lines, or the error."""
    try:
        cassette = loads_cassette(text, name="t", path=PATH, fast=fast)
    except CassetteError as exc:
        return ("error", str(exc))
    lines = [
        step.line
        for episode in cassette.episodes
        for step in (*episode.timeline, *(s for r in episode.handshake.rules for s in r.respond))
    ]
    return ("ok", repr(cassette), repr(lines))


@contextmanager
def loader(kind: Any) -> Iterator[None]:
    with mock.patch.object(yaml_reader, "_Loader", kind):
        yield


def assert_read_alike(text: str) -> tuple[str, ...]:
    """Both readings agree, under every loader; return libyaml's (or PyYAML's) answer."""
    for kind in LOADERS:
        with loader(kind):
            fast, slow = outcome(text, fast=True), outcome(text, fast=False)
        assert fast == slow, (kind.__name__, text)
    return fast


# -- what the dumper writes --------------------------------------------------------------


@PROPERTY
@given(timelines, st.lists(timelines, max_size=2), st.booleans())
def test_dumped_cassettes_read_alike(
    first: tuple[Step, ...], others: list[tuple[Step, ...]], closed: bool
) -> None:
    if closed:
        first = (*first, CloseStep(1000, "bye"))
    episodes = tuple(Episode(timeline=timeline) for timeline in (first, *others))
    cassette = Cassette("t", episodes=episodes, path=PATH)
    answer = assert_read_alike(dumps_cassette(cassette))
    if answer[0] == "ok":  # everything finite: it comes back as it was
        assert loads_cassette(dumps_cassette(cassette), name="t", path=PATH) == cassette


def test_the_dumper_writes_a_recording_as_one_line_of_json_per_step() -> None:
    steps = (
        FrameStep(Direction.SERVER, {"type": "session.created", "event_id": "e1"}),
        FrameStep(Direction.CLIENT, {"type": "response.create"}, delay=0.5, match=MatchMode.EXACT),
        FrameStep(Direction.SERVER, {"type": "x", "small": 1e-06, "big": 1e16}),
        FrameStep(Direction.SERVER, "raw text"),
        FrameStep(Direction.CLIENT, b"\x00\x01"),
        CloseStep(1000, "done"),
    )
    text = dumps_cassette(Cassette("t", episodes=(Episode(timeline=steps),)))
    assert text.splitlines()[1:] == [
        "timeline:",
        '- server: {"type": "session.created", "event_id": "e1"}',
        '- client: {"type": "response.create"}',
        "  match: exact",
        "  delay: 0.5",
        '- server: {"type": "x", "small": 1.0e-06, "big": 1.0e+16}',
        '- server: "raw text"',
        '- client_binary: "AAE="',
        "- close: {code: 1000, reason: done}",
    ]
    assert loads_cassette(text).timeline == steps


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({"type": "x", "v": float("nan")}, "NaN is no JSON"),
        ({"type": "x", "k" * (MAX_KEY + 1): 1}, "a long key"),
        ({"type": "x", "v": nested(MAX_DEPTH)}, "nested too deep"),
    ],
)
def test_what_json_cannot_say_alike_is_written_as_yaml(value: Any, why: str) -> None:
    assert encode_step({"server": value}) is None, why


def test_raw_characters_yaml_refuses_or_breaks_on_are_escaped() -> None:
    lines = encode_step({"server": {"type": "x", "s": "a\x7f\x85\u2028\u2029\ufeff\uffffb"}})
    assert lines == ['- server: {"type": "x", "s": "a\\u007f\\u0085\\u2028\\u2029\\ufeff\\uffffb"}']


# -- what the reader refuses, and why --------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        '{"v": 1e5}',  # YAML 1.1: the string "1e5"
        '{"v": 1.5e5}',  # an exponent without a sign: a string too
        '{"v": NaN}',  # a string in YAML
        '{"v": -Infinity}',
        '{"v": 1.0e+999}',  # infinite: the YAML reader refuses it
        '{"v": "\\ud83d\\ude00"}',  # libyaml refuses surrogate escapes; JSON pairs them
        '{"v": "\x7f"}',  # PyYAML refuses DEL raw
        '{"v": "\x85"}',  # YAML reads U+0085 as a line break
        '{"v": "a\u2028b"}',
        '{"v": 1, "v": 2}',  # json keeps the last; the reader refuses duplicates
        '{"v":\t1}',  # a tab starts no token in libyaml
        '{"' + "k" * 1100 + '": 1}',  # YAML's 1024-character limit on a key
        '{"v" : 1}',  # space before the colon: counted in that limit
    ],
)
def test_the_reader_leaves_to_yaml_what_yaml_reads_otherwise(value: str) -> None:
    with pytest.raises(NotJSONStep):
        StepDecoder(None).step("server", value, {}, 1)
    text = f"version: 1\ntimeline:\n- server: {value}\n"
    assert_read_alike(text)  # and reading the whole text gives YAML's answer


@pytest.mark.parametrize(
    ("more", "why"),
    [
        ({"delay": "1e-3"}, "a string in YAML 1.1"),
        ({"delay": "01"}, "octal in YAML 1.1"),
        ({"delay": "1_000"}, "YAML drops the underscore"),
        ({"delay": "1:30"}, "sexagesimal: 90"),
        ({"delay": "-1"}, "refused by the reader"),
        ({"delay": "9" * 400}, "overflows a float"),
        ({"match": "nope"}, "no such matcher"),
    ],
)
def test_further_keys_yaml_reads_otherwise_are_left_to_it(more: dict[str, str], why: str) -> None:
    with pytest.raises(NotJSONStep):
        StepDecoder(None).step("client", '{"type": "x"}', more, 1)
    [(key, value)] = more.items()
    assert_read_alike(f'version: 1\ntimeline:\n- client: {{"type": "x"}}\n  {key}: {value}\n')


# -- hand-written lines: any spacing, any mistake ----------------------------------------

SEPARATORS = [(", ", ": "), (",", ":"), (" , ", " : "), (",  ", ":  "), (",", ": ")]
MORE = [
    "delay: 0.5", "delay: 2", "delay: 0", "delay: .5", "delay: 1e-3", "delay: 1.0e-3",
    "delay: 01", "delay: -1", "delay: true", "delay: 0.5 # c", "delay:", "delay: 1_0",
    "match: exact", "match: subset", "match: type", "match: nope", "match: [exact]",
    "other: 1", "# a comment", "", "  delay: 1", "- x",
]  # fmt: skip


@st.composite
def hand_written_steps(draw: st.DrawFn, indent: str) -> list[str]:
    """A step as someone might type it: odd spacing, escapes, typos, further keys."""
    kind = draw(st.sampled_from(["server", "client", "server_binary", "client_binary"]))
    value: Any = draw(st.one_of(events, texts, json_values))
    if kind.endswith("_binary") and draw(st.booleans()):
        value = base64.b64encode(draw(st.binary(max_size=6))).decode()
    text = json.dumps(
        value,
        ensure_ascii=draw(st.sampled_from([True, True, False])),
        separators=draw(st.sampled_from(SEPARATORS)),
    )
    if draw(st.integers(0, 3)) == 0:  # a typo, or a character YAML reads its own way
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 1))
        typo = draw(st.sampled_from([*SPECIAL, "\\u", "\\ud800", "e5"]))
        text = text[:at] + typo + text[at + cut :]
    space = draw(st.sampled_from([" ", " ", " ", "  ", ""]))
    tail = draw(st.sampled_from(["", "", "", " ", "  # note", "\r"]))
    lines = [f"{indent}- {kind}:{space}{text}{tail}"]
    more = st.sampled_from(MORE) if draw(st.booleans()) else st.sampled_from(MORE[:3] + MORE[12:15])
    lines += [f"{indent}  {key}" for key in draw(st.lists(more, max_size=2))]
    return lines


@st.composite
def hand_written_cassettes(draw: st.DrawFn) -> str:
    """Step lines in every place a line can be: timelines, other lists, scalars."""
    places = ["top", "connections"] * 3 + ["respond", "rules", "block", "quoted", "flow", "event"]
    place = draw(st.sampled_from(places))
    indent = {"top": "", "connections": "  ", "respond": "    ", "rules": ""}.get(place, "  ")
    count = draw(st.integers(1, 4))
    steps = [line for _ in range(count) for line in draw(hand_written_steps(indent))]
    if draw(st.booleans()):
        steps.insert(draw(st.integers(0, len(steps))), draw(st.sampled_from(["", "  ", "# c"])))
    body = "\n".join(steps)
    head = {
        "top": "timeline:\n",
        "connections": "connections:\n- timeline:\n",
        "respond": "handshake:\n  rules:\n  - respond:\n",
        "rules": "rules:\n",
        "block": "description: |\n",
        "quoted": 'description: "\n',
        "flow": "description: [\n",
        "event": "timeline:\n- server:\n    type: x\n    list:\n",
    }[place]
    foot = {"quoted": '\n  "', "flow": "\n  ]"}.get(place, "")
    timeline = "" if place in ("top", "connections", "event") else "timeline: []\n"
    return f"version: 1\n{timeline}{head}{body}{foot}\n"


@PROPERTY
@given(hand_written_cassettes())
def test_hand_written_lines_read_alike(text: str) -> None:
    assert_read_alike(text)


def test_an_error_in_a_json_line_names_its_file_line_and_column() -> None:
    text = (
        "version: 1\n"
        "timeline:\n"
        '- server: {"type": "session.created"}\n'
        '- server_binary: "not base64!"\n'
        '- server: {"type": "x", "type": "y"}\n'
    )
    with pytest.raises(CassetteError) as info:
        loads_cassette(text, path=PATH)
    assert str(info.value) == f"{PATH}:4:18: expected base64 data"
    with pytest.raises(CassetteError) as info:
        loads_cassette(text.replace("not base64!", "AAE="), path=PATH)
    assert str(info.value) == f"{PATH}:5:25: duplicate key 'type'"
