"""The YAML loader and dumper: strict, safe, line-accurate, stable."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fakeupstream.cassette import Cassette, CloseStep, Direction, Episode, FrameStep, MatchMode
from fakeupstream.exceptions import CassetteError
from fakeupstream.storage.cassette_file import load_cassette
from fakeupstream.storage.library import CassetteLibrary
from fakeupstream.storage.yaml_dumper import dumps_cassette
from fakeupstream.storage.yaml_reader import loads_cassette

MINIMAL = """\
version: 1
timeline:
  - server: {type: session.created, event_id: e1}
"""


def load(text: str):  # type: ignore[no-untyped-def]
    return loads_cassette(textwrap.dedent(text), name="t", path=Path("t.yaml"))


def error_of(text: str) -> CassetteError:
    with pytest.raises(CassetteError) as info:
        load(text)
    return info.value


def test_minimal_cassette() -> None:
    cassette = load(MINIMAL)
    assert cassette.name == "t"
    assert cassette.version == 1
    assert cassette.match is MatchMode.TYPE
    [step] = cassette.timeline
    assert isinstance(step, FrameStep)
    assert step.direction is Direction.SERVER
    assert step.data == {"type": "session.created", "event_id": "e1"}
    assert step.line == 3


def test_every_part_is_read() -> None:
    cassette = load("""\
        version: 1
        description: all of it
        recorded: {at: "2026-09-18T10:15:00Z", upstream: wss://x, model: m, fakeupstream: 0.1.0}
        match: subset
        handshake:
          expect: {path: /v1/realtime, query: {model: gpt-realtime}, headers: {X-A: b}}
          rules:
            - when: {header: OpenAI-Beta, missing_query: [call_id, intent]}
              respond:
                - server: {type: error}
                - close: {code: 4000, reason: nope}
            - when: {header_equals: {X-Mode: refuse}, query: {model: m}, path: /v1/realtime}
              refuse: {status: 401, body: {error: {message: no}}, headers: {Retry-After: "1"}}
        timeline:
          - server: {type: session.created}
            delay: 0.25
          - client: {type: session.update}
            match: exact
          - client_binary: AAEC
          - server: "raw text"
          - close: {code: 1000}
        """)
    assert cassette.description == "all of it"
    assert cassette.recorded.at == datetime(2026, 9, 18, 10, 15, tzinfo=UTC)
    assert cassette.match is MatchMode.SUBSET
    assert cassette.handshake.expect.query == (("model", "gpt-realtime"),)
    first, second = cassette.handshake.rules
    assert first.when.header == ("OpenAI-Beta",)
    assert first.when.missing_query == ("call_id", "intent")
    assert isinstance(first.respond[-1], CloseStep)
    assert second.refuse is not None
    assert second.refuse.status == 401
    assert second.refuse.headers == (("Retry-After", "1"),)
    created, update, binary, raw, close = cassette.timeline
    assert isinstance(created, FrameStep) and created.delay == 0.25
    assert isinstance(update, FrameStep) and update.match is MatchMode.EXACT
    assert isinstance(binary, FrameStep) and binary.data == b"\x00\x01\x02"
    assert isinstance(raw, FrameStep) and raw.data == "raw text"
    assert close == CloseStep(code=1000)


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("version: 1\n", 1, "missing required key 'timeline'"),
        ("version: 2\ntimeline: []\n", 1, "unsupported cassette format version 2"),
        ("version: 1\ntimeline: []\nextra: 1\n", 3, "unknown key 'extra' in a cassette"),
        ("version: 1\ntimeline: {}\n", 2, "expected the timeline (a list), got a mapping"),
        ("version: 1\ntimeline:\n  - {server: {}, client: {}}\n", 3, "exactly one of"),
        ("version: 1\ntimeline:\n  - {server: {}, delay: -1}\n", 3, "zero or more"),
        ("version: 1\ntimeline:\n  - {server: {}, delay: yes}\n", 3, "got a boolean"),
        ("version: 1\ntimeline:\n  - {server: {}, match: type}\n", 3, "only applies to client"),
        ("version: 1\ntimeline:\n  - {client: {}, match: fuzzy}\n", 3, "unknown matcher 'fuzzy'"),
        ("version: 1\ntimeline:\n  - close: {code: 1005}\n", 3, "not a close code that can"),
        ("version: 1\ntimeline:\n  - close: {code: 1000}\n  - server: {}\n", 3, "must be the last"),
        ("version: 1\ntimeline:\n  - server: {a: 1, a: 2}\n", 3, "duplicate key 'a'"),
        ("version: 1\ntimeline:\n  - server: {at: 2026-01-01}\n", 3, "quote dates"),
        ("version: 1\ntimeline:\n  - server_binary: '!!'\n", 3, "expected base64"),
        ("version: 1\ntimeline:\n  - server_binary: AAé=\n", 3, "expected base64"),
        ("version: 1\ntimeline:\n  - {server: {}, delay: 1" + "0" * 400 + "}\n", 3, "zero or more"),
        ("version: 1\ntimeline: [\n", 3, "invalid YAML"),
        (
            "version: 1\nhandshake:\n  rules:\n    - when: {header: X}\ntimeline: []\n",
            4,
            "exactly one of `respond` or `refuse`",
        ),
        (
            "version: 1\nhandshake:\n  rules:\n    - respond: [{server: {}}]\ntimeline: []\n",
            4,
            "must end with a `close` step",
        ),
        (
            "version: 1\nhandshake:\n  rules:\n"
            "    - respond: [{client: {}}, {close: {code: 1000}}]\ntimeline: []\n",
            4,
            "can only hold server frames",
        ),
        (
            "version: 1\nhandshake:\n  rules:\n    - refuse: {status: 101}\ntimeline: []\n",
            4,
            "HTTP status from 200 to 599",
        ),
        (
            "version: 1\nhandshake:\n  rules:\n"
            "    - when: {hedder: X}\n      refuse: {status: 401}\ntimeline: []\n",
            4,
            "unknown key 'hedder' in a `when` condition",
        ),
        ("", 1, "got an empty file"),
        ("- 1\n", 1, "expected a cassette (a mapping), got a list"),
    ],
)
def test_errors_name_file_line_and_expectation(text: str, line: int, expected: str) -> None:
    error = error_of(text)
    assert error.path == Path("t.yaml")
    assert error.line == line
    assert expected in str(error)
    assert str(error).startswith(f"t.yaml:{line}")


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['echo pwned']",
        "!!python/name:os.system",
        "!!set {a, b}",
        "!custom 1",
    ],
)
def test_yaml_tags_that_build_objects_are_refused(payload: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"version: 1\ntimeline:\n  - server: {{x: {payload.replace('pwned', str(marker))}}}\n"
    error = error_of(text)
    assert error.line == 3
    assert "tag" in str(error) or "expected" in str(error)
    assert not marker.exists()


def test_unreadable_file_is_a_cassette_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CassetteError, match="cannot read"):
        load_cassette(path)


def test_load_dump_load_is_identical_for_every_bundled_cassette() -> None:
    library = CassetteLibrary()
    assert library.names()
    for name in library.names():
        original = library.load(name)
        text = dumps_cassette(original)
        again = loads_cassette(text, name=name)
        assert again == original, name
        assert dumps_cassette(again) == text, name


def test_dump_is_stable_and_keeps_key_order() -> None:
    cassette = load("""\
        version: 1
        handshake:
          rules:
            - when: {header: [A, B]}
              respond: [{close: {code: 4000, reason: r}}]
        timeline:
          - server: {type: z, b: 1, a: 2}
            delay: 0.1234567
          - client: {type: y}
            match: subset
        """)
    text = dumps_cassette(cassette)
    assert text.index('"b": 1') < text.index('"a": 2')
    assert "delay: 0.123457" in text
    assert loads_cassette(text, name="t") == cassette


def test_a_cassette_can_hold_several_connections() -> None:
    cassette = load("""\
        version: 1
        connections:
          - handshake:
              rules: [{refuse: {status: 503}}]
            timeline: []
          - timeline:
              - server: {type: session.created}
        """)
    assert len(cassette.episodes) == 2
    assert cassette.episode(0).handshake.rules[0].refuse is not None
    assert cassette.episode(1).timeline == cassette.episode(7).timeline
    text = dumps_cassette(cassette)
    assert text.startswith("version: 1\nconnections:\n")
    assert loads_cassette(text, name="t") == cassette


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nconnections: []\ntimeline: []\n", "either `connections` or"),
        ("version: 1\nconnections: []\n", "needs at least one connection"),
        ("version: 1\nconnections:\n  - {handshake: {}}\n", "missing required key 'timeline'"),
        ("version: 1\nconnections:\n  - {timeline: [], match: type}\n", "unknown key 'match'"),
    ],
)
def test_connection_errors(text: str, expected: str) -> None:
    assert expected in str(error_of(text))


def test_a_lone_surrogate_is_saved_as_a_replacement_character(tmp_path: Path) -> None:
    # A "\ud800" escape in a frame decodes to a character YAML cannot hold (libyaml
    # refuses to write it, PyYAML to read it): the recording is kept, that one
    # character becomes U+FFFD, and a surrogate pair stays one character.
    event = {"type": "response.output_text.delta", "delta": "a \ud800 b \U0001f600"}
    timeline = (FrameStep(Direction.SERVER, event), FrameStep(Direction.SERVER, {"type": "x"}))
    library = CassetteLibrary(tmp_path)
    library.save(Cassette("odd", episodes=(Episode(timeline=timeline),)))
    [first, second] = library.load("odd").episodes[0].timeline
    assert isinstance(first, FrameStep) and isinstance(second, FrameStep)
    assert first.data == {"type": "response.output_text.delta", "delta": "a \ufffd b \U0001f600"}
    assert second.data == {"type": "x"}
