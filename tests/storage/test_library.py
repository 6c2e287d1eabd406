"""The cassette library: names to paths, loads cached until the file changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakeupstream.exceptions import CassetteNotFound
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
