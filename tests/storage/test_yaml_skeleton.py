"""The skeleton: JSON step lines read without YAML, only where YAML would read steps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fakeupstream.cassette import Cassette, Direction, Episode, FrameStep
from fakeupstream.exceptions import CassetteError
from fakeupstream.storage import yaml_reader
from fakeupstream.storage.cassette_file import dump_cassette, load_cassette
from fakeupstream.storage.yaml_dumper import dumps_cassette
from fakeupstream.storage.yaml_limits import LoadLimits
from fakeupstream.storage.yaml_reader import loads_cassette
from fakeupstream.storage.yaml_skeleton import PLACEHOLDER, take_out_json_steps

from .test_json_steps import PATH, assert_read_alike


def recording(connections: int = 2, steps: int = 50) -> Cassette:
    timeline = tuple(
        FrameStep(
            Direction.SERVER if n % 5 else Direction.CLIENT,
            {"type": "response.output_text.delta", "event_id": f"event_{n}", "delta": f" {n}"},
            delay=round(0.001 * n, 6),
        )
        for n in range(steps)
    )
    return Cassette("t", episodes=tuple(Episode(timeline=timeline) for _ in range(connections)))


def test_a_recording_leaves_yaml_one_line_per_timeline() -> None:
    text = dumps_cassette(recording())
    skeleton = take_out_json_steps(text, None)
    assert skeleton is not None
    assert skeleton.text.count(PLACEHOLDER) == 2
    assert skeleton.text.count("\n") == text.count("\n")  # every other line keeps its number
    assert len(skeleton.text) < len(text) / 20


def test_no_frame_of_a_recording_goes_through_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a step was read by YAML")

    text = dumps_cassette(recording())
    monkeypatch.setattr(yaml_reader._Reader, "step", refuse)
    cassette = loads_cassette(text, name="t")
    assert cassette == recording()
    assert [step.line for step in cassette.episode(0).timeline][:3] == [4, 5, 7]


def test_the_bundled_hand_written_cassettes_have_nothing_to_take_out() -> None:
    bundled = Path(__file__).resolve().parents[2] / "cassettes"
    for path in sorted(bundled.glob("*.yaml")):
        assert take_out_json_steps(path.read_text(encoding="utf-8"), None) is None, path.name


@pytest.mark.parametrize(
    "text",
    [
        # Step lines inside a block scalar, a quoted string, a flow list: text, not steps.
        'description: |\n  - server: {"type": "a"}\ntimeline:\n- server: {"type": "b"}\n',
        'description: "x\n  - server: {\\"type\\": \\"a\\"}"\ntimeline:\n- server: {"type": "b"}\n',
        'timeline: [\n- server: {"type": "a"}\n]\n',
        # Inside an event written in YAML: data, where the reader would meet a placeholder.
        'timeline:\n- server:\n    type: x\n    list:\n    - server: {"type": "a"}\n',
        # In a list that holds no steps: YAML's error, at YAML's column.
        'timeline: []\nrules:\n- server: {"type": "a"}\n',
        # In a handshake response, whose checks name a step's column.
        'handshake:\n  rules:\n  - respond:\n    - client: {"type": "a"}\n'
        "    - close: {code: 1000}\ntimeline: []\n",
        # Indented under a step: more of the step follows, in YAML.
        'timeline:\n- server: {"type": "a"}\n  delay: 1\n  match: exact\n',
        'timeline:\n- server: {"type": "a"}\n\n  delay: 1\n',
        # An alias: the alias limits count nodes, so YAML reads it all.
        'timeline: &t\n- server: {"type": "a"}\nconnections: *t\n',
        'description: &d x\ntimeline:\n- server: {"type": "a"}\n- server: {"type": *d}\n',
        # Line breaks YAML counts and `json` does not: left to YAML.
        'description: "a\u2028b"\ntimeline:\n- server: {"type": "a"}\n',
        'description: "a\rb"\ntimeline:\n- server: {"type": "a"}\n',
    ],
)
def test_lines_that_only_look_like_steps_read_as_yaml_reads_them(text: str) -> None:
    assert_read_alike("version: 1\n" + text)


def test_windows_line_ends_read_fast_with_the_same_lines() -> None:
    text = dumps_cassette(recording(connections=1, steps=3)).replace("\n", "\r\n")
    assert take_out_json_steps(text, None) is not None
    assert assert_read_alike(text)[0] == "ok"


def test_an_alias_bomb_next_to_json_steps_is_still_refused() -> None:
    text = textwrap.dedent("""\
        version: 1
        description: &a [x, x, x, x]
        timeline:
        - server: {"type": "a"}
        - server: {"type": "b", "v": [*a, *a, *a, *a, *a]}
        """)
    errors = []
    for fast in (True, False):
        with pytest.raises(CassetteError) as info:
            loads_cassette(text, path=PATH, limits=LoadLimits(max_aliases=2), fast=fast)
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"{PATH}:2:14: too many YAML aliases")


def test_sidecar_references_in_json_lines_resolve_or_fail_at_their_column(
    tmp_path: Path,
) -> None:
    audio = "A" * 8000
    event = {"type": "response.output_audio.delta", "delta": audio}
    cassette = Cassette("talk", episodes=(Episode(timeline=(FrameStep(Direction.SERVER, event),)),))
    path = tmp_path / "talk.yaml"
    dump_cassette(cassette, path, sidecar_threshold=4096)
    assert '{"$sidecar": "talk.sidecar/' in path.read_text()
    assert load_cassette(path).timeline == cassette.timeline
    for sidecar in (tmp_path / "talk.sidecar").iterdir():
        sidecar.unlink()
    with pytest.raises(CassetteError) as info:
        load_cassette(path)
    column = path.read_text().splitlines()[2].index('{"$sidecar"') + 1
    assert str(info.value).startswith(f"{path}:3:{column}: sidecar file 'talk.sidecar/")
    assert str(info.value).endswith("is missing")
