"""A cassette's ``faults:``: read with line-precise errors, dumped back, checked."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from fakeupstream.cli import main
from fakeupstream.exceptions import CassetteError
from fakeupstream.faults import ErrorKind, Fault, FaultKind
from fakeupstream.storage.check import check_cassette
from fakeupstream.storage.yaml_dumper import dumps_cassette
from fakeupstream.storage.yaml_reader import loads_cassette


def load(text: str) -> object:
    return loads_cassette(textwrap.dedent(text), name="faulty")


def error_of(text: str) -> CassetteError:
    with pytest.raises(CassetteError) as caught:
        load(text)
    return caught.value


def test_faults_are_read_and_dumped_back() -> None:
    cassette = loads_cassette(
        textwrap.dedent("""\
        version: 1
        faults:
          - {kind: reset, after: 5}
          - {kind: error, event: response.create, error: session_expired}
          - {kind: stall, after: 1, seconds: 0.5}
          - {kind: refuse, status: 429, seconds: 7}
        timeline:
          - server: {type: session.created}
        """),
        name="faulty",
    )
    assert cassette.episode(0).faults == (
        Fault(FaultKind.RESET, after=5),
        Fault(FaultKind.ERROR, event="response.create", error=ErrorKind.SESSION_EXPIRED),
        Fault(FaultKind.STALL, after=1, seconds=0.5),
        Fault(FaultKind.REFUSE, status=429, seconds=7.0),
    )
    text = dumps_cassette(cassette)
    assert "faults:\n- {kind: reset, after: 5}\n" in text
    assert loads_cassette(text, name="faulty") == cassette


def test_each_connection_has_its_own_faults() -> None:
    cassette = loads_cassette(
        textwrap.dedent("""\
        version: 1
        connections:
          - faults: [{kind: reset, after: 1}]
            timeline: [{server: {type: session.created}}]
          - timeline: [{server: {type: session.created}}]
        """),
        name="reconnect",
    )
    assert cassette.episode(0).faults == (Fault(FaultKind.RESET, after=1),)
    assert cassette.episode(1).faults == ()
    assert loads_cassette(dumps_cassette(cassette), name="reconnect") == cassette


@pytest.mark.parametrize(
    ("faults", "line", "expected"),
    [
        ("[{kind: bogus}]", 2, "unknown fault kind 'bogus'; expected one of: refuse, delay"),
        ("[{after: 1}]", 2, "a fault is missing required key 'kind'"),
        ("[{kind: reset, status: 429}]", 2, "fault 'reset' takes no parameter 'status'"),
        ("[{kind: reset, colour: red}]", 2, "unknown key 'colour' in a fault; expected one of"),
        ("\n  - kind: close\n    code: 5000", 4, "code must be from 1000 to 4999, got 5000"),
        ("\n  - kind: reset\n    after: -2", 4, "after must be 0 or more"),
        ("\n  - kind: reset\n    after: '2'", 4, "after must be an integer, got '2'"),
        ("\n  - kind: reset\n    after: true", 4, "expected a value for 'after', got a boolean"),
        ("[{kind: error}]", 2, "fault 'error' needs 'error'"),
        ("{kind: reset}", 2, "expected `faults` (a list), got a mapping"),
    ],
)
def test_fault_errors_name_the_line(faults: str, line: int, expected: str) -> None:
    error = error_of(f"version: 1\nfaults: {faults}\ntimeline: []\n")
    assert error.line == line
    assert expected in str(error)


def test_top_level_faults_do_not_go_with_connections() -> None:
    error = error_of("version: 1\nfaults: []\nconnections:\n  - timeline: []\n")
    assert "has `faults` in each one" in str(error)


def test_check_reports_a_bad_fault(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nfaults: [{kind: close, code: 1005}]\ntimeline: []\n")
    [problem] = check_cassette(path, sdk=False)
    assert f"{path}:2" in problem
    assert "code 1005 cannot be sent in a close frame" in problem


def test_fakeupstream_check_names_the_line_of_a_bad_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.yaml").write_text(
        "version: 1\nfaults: [{kind: reset, after: 5}]\ntimeline: []\n"
    )
    (tmp_path / "bad.yaml").write_text("version: 1\nfaults:\n  - {kind: drip}\ntimeline: []\n")
    assert main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"{tmp_path / 'bad.yaml'}:3" in text
    assert "fault 'drip' needs 'rate'" in text
    assert "good.yaml:" not in text


def test_the_cassettes_in_the_fault_guide_load() -> None:
    guide = Path(__file__).resolve().parents[2] / "docs" / "faults.md"
    blocks = re.findall(r"```yaml\n(.*?)```", guide.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 2
    for block in blocks:
        cassette = loads_cassette(block, name="guide")
        assert any(episode.faults for episode in cassette.episodes)
