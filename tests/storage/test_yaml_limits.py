"""Loader limits: an alias bomb, an oversized file and the overrides, refused with a line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakeupstream.exceptions import CassetteError
from fakeupstream.storage.cassette_file import load_cassette
from fakeupstream.storage.library import CassetteLibrary
from fakeupstream.storage.yaml_limits import (
    ENV_MAX_ALIAS_NODES,
    ENV_MAX_ALIASES,
    ENV_MAX_BYTES,
    LoadLimits,
)
from fakeupstream.storage.yaml_reader import loads_cassette


def alias_bomb(levels: int = 9) -> str:
    """Nine levels of nine aliases each: 9**9 nodes written in under 600 bytes."""
    lines = ["version: 1", "timeline:", "- server: {type: a, v: &a [l,l,l,l,l,l,l,l,l]}"]
    for level in range(1, levels):
        name, previous = "abcdefghi"[level], "abcdefghi"[level - 1]
        lines.append(f"- server: {{type: a, v: &{name} [" + ",".join(["*" + previous] * 9) + "]}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_with_a_line() -> None:
    text = alias_bomb()
    assert len(text.encode()) < 600
    with pytest.raises(CassetteError) as info:
        loads_cassette(text, path=Path("bomb.yaml"))
    error = info.value
    assert "aliases expand to more than 100000 nodes" in error.problem
    assert ENV_MAX_ALIAS_NODES in error.problem
    assert error.line is not None
    assert str(error).startswith("bomb.yaml:")


def test_a_few_aliases_still_load_as_copies() -> None:
    text = "version: 1\ntimeline:\n- server: &s {type: a, v: [1, 2]}\n- server: *s\n"
    cassette = loads_cassette(text)
    first, second = (step.data for step in cassette.timeline)  # type: ignore[union-attr]
    assert first == second == {"type": "a", "v": [1, 2]}


def test_the_alias_count_is_limited() -> None:
    text = "version: 1\ntimeline:\n- server: &s {type: a}\n" + "- server: *s\n" * 5
    assert len(loads_cassette(text, limits=LoadLimits(max_aliases=5)).timeline) == 6
    with pytest.raises(CassetteError, match="too many YAML aliases") as info:
        loads_cassette(text, limits=LoadLimits(max_aliases=4))
    assert info.value.line == 3


def test_a_larger_bomb_loads_only_when_allowed() -> None:
    text = alias_bomb(levels=4)  # 9**3 copies: within an explicit budget
    with pytest.raises(CassetteError):
        loads_cassette(text, limits=LoadLimits(max_alias_nodes=100))
    cassette = loads_cassette(text, limits=LoadLimits(max_alias_nodes=10_000))
    assert len(cassette.timeline) == 4


def test_the_file_size_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\ntimeline: []\n" + "# padding\n" * 100)
    with pytest.raises(CassetteError, match="more than the 100 allowed") as info:
        load_cassette(path, limits=LoadLimits(max_bytes=100))
    assert ENV_MAX_BYTES in str(info.value)
    with pytest.raises(CassetteError, match="larger than 100 bytes"):
        loads_cassette(path.read_text(), limits=LoadLimits(max_bytes=100))
    assert load_cassette(path).timeline == ()


def test_the_environment_overrides_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("version: 1\ntimeline:\n- server: &s {type: a}\n- server: *s\n")
    monkeypatch.setenv(ENV_MAX_ALIASES, "0")
    with pytest.raises(CassetteError, match="too many YAML aliases"):
        load_cassette(path)
    monkeypatch.setenv(ENV_MAX_ALIASES, "1_000")
    assert len(load_cassette(path).timeline) == 2
    monkeypatch.setenv(ENV_MAX_ALIASES, "lots")
    with pytest.raises(CassetteError, match=f"{ENV_MAX_ALIASES} must be a whole number"):
        load_cassette(path)


def test_a_malformed_file_is_parsed_once_per_change(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    library = CassetteLibrary(tmp_path)
    errors = []
    for _ in range(2):
        with pytest.raises(CassetteError) as info:
            library.load("bomb")
        errors.append(info.value)
    assert str(errors[0]) == str(errors[1])
    path.write_text("version: 1\ntimeline: []\n")
    assert library.load("bomb").timeline == ()
