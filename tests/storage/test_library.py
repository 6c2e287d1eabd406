"""The cassette library: names to paths, loads cached until the file changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakeupstream.exceptions import CassetteError, CassetteNotFound
from fakeupstream.storage.library import CassetteLibrary


def test_a_name_maps_to_the_same_path_every_time(tmp_path: Path) -> None:
    library = CassetteLibrary(tmp_path)
    assert library.path_for("chat") == tmp_path / "chat.yaml"
    assert library.path_for("chat") is library.path_for("chat")


@pytest.mark.parametrize("name", ["../secret", ".hidden", "chat.yaml", "/etc/passwd", "a//b", ""])
def test_a_name_that_is_not_a_cassette_name_is_refused_every_time(
    tmp_path: Path, name: str
) -> None:
    library = CassetteLibrary(tmp_path)
    library.path_for("chat")
    for _ in range(2):
        with pytest.raises(CassetteNotFound):
            library.path_for(name)


def test_an_edited_cassette_is_loaded_again(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    path.write_text('version: 1\ndescription: "one"\ntimeline: []\n')
    library = CassetteLibrary(tmp_path)
    assert library.load("chat").description == "one"
    assert library.load("chat") is library.load("chat")
    path.write_text('version: 1\ndescription: "two, longer"\ntimeline: []\n')
    assert library.load("chat").description == "two, longer"


def test_is_current_tells_whether_a_load_would_parse(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    path.write_text('version: 1\ndescription: "one"\ntimeline: []\n')
    library = CassetteLibrary(tmp_path)
    assert not library.is_current("chat")  # never loaded
    library.load("chat")
    assert library.is_current("chat")
    path.write_text('version: 1\ndescription: "two, longer"\ntimeline: []\n')
    assert not library.is_current("chat")  # edited: the next load parses it again
    library.load("chat")
    assert library.is_current("chat")
    path.write_text("version: [\n")
    with pytest.raises(CassetteError):
        library.load("chat")
    assert library.is_current("chat")  # the failure is remembered until the file changes
    path.unlink()
    assert not library.is_current("chat")
    assert not library.is_current("never-seen")


def test_cached_answers_from_memory_or_says_the_file_must_be_read(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    path.write_text('version: 1\ndescription: "one"\ntimeline: []\n')
    library = CassetteLibrary(tmp_path)
    assert library.cached("chat") is None  # never loaded
    loaded = library.load("chat")
    assert library.cached("chat") is loaded
    path.write_text('version: 1\ndescription: "two, longer"\ntimeline: []\n')
    assert library.cached("chat") is None  # edited: it must be read again
    path.write_text("version: [\n")
    with pytest.raises(CassetteError):
        library.load("chat")
    with pytest.raises(CassetteError, match=r"chat\.yaml"):  # the failure, remembered
        library.cached("chat")
    path.unlink()
    assert library.cached("chat") is None
    assert library.cached("never-seen") is None
