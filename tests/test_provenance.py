"""Provenance: `recorded` for what the recorder captured, `authored` for what was written."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from fakeupstream.cassette import Authored
from fakeupstream.exceptions import CassetteError
from fakeupstream.storage.library import CassetteLibrary
from fakeupstream.storage.yaml_dumper import dumps_cassette
from fakeupstream.storage.yaml_reader import loads_cassette

AUTHORED = """\
    version: 1
    authored:
      at: "2026-09-18T10:15:00Z"
      from: [the GA reference, openai 3.54.0 types]
      by: a maintainer
    timeline: []
    """


def test_authored_is_read_dumped_and_anchors_the_time_shift() -> None:
    cassette = loads_cassette(textwrap.dedent(AUTHORED), name="t")
    at = datetime(2026, 9, 18, 10, 15, tzinfo=UTC)
    assert cassette.authored == Authored(
        at=at, sources=("the GA reference", "openai 3.54.0 types"), by="a maintainer"
    )
    assert cassette.recorded.at is None
    assert cassette.time_anchor == at
    assert loads_cassette(dumps_cassette(cassette), name="t") == cassette


def test_a_single_source_may_be_a_string() -> None:
    text = "version: 1\nauthored: {from: the GA reference}\ntimeline: []\n"
    cassette = loads_cassette(text, name="t")
    assert cassette.authored == Authored(sources=("the GA reference",))
    assert cassette.time_anchor is None


def test_unknown_authored_keys_are_refused_with_the_line() -> None:
    with pytest.raises(CassetteError, match=r":2:12: unknown key 'when' in `authored`"):
        loads_cassette("version: 1\nauthored: {when: now}\ntimeline: []\n", name="t")


@pytest.mark.parametrize("name", CassetteLibrary().names())
def test_the_bundled_cassettes_say_they_were_authored_not_recorded(name: str) -> None:
    cassette = CassetteLibrary().load(name)
    assert cassette.recorded.at is None and cassette.recorded.upstream is None
    assert cassette.authored is not None and cassette.authored.sources
    assert cassette.time_anchor is not None
