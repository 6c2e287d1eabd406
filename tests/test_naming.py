"""Default cassette names from test names: plain data in, a safe relative name out."""

from __future__ import annotations

import pytest

from fakeupstream.cassette import MAX_NAME_LENGTH, valid_name
from fakeupstream.naming import default_cassette_name


@pytest.mark.parametrize(
    ("module", "test", "cls", "expected"),
    [
        ("test_chat", "test_reply", None, "test_chat/test_reply"),
        ("test_chat", "test_reply", "TestChat", "test_chat/TestChat.test_reply"),
        ("test_chat", "test_reply[fast-1]", None, "test_chat/test_reply-fast-1"),
        ("test_chat", "test_reply[a/b ../c]", None, "test_chat/test_reply-a-b-..-c"),
        ("test_chat", "test_x[.yaml]", None, "test_chat/test_x--yaml"),
        ("test_chat", "test_x[x.yaml]", None, "test_chat/test_x-x-yaml"),
        ("test_chat", "[]", None, "test_chat/test"),
    ],
)
def test_default_cassette_name(module: str, test: str, cls: str | None, expected: str) -> None:
    name = default_cassette_name(module, test, cls)
    assert name == expected
    assert valid_name(name)


def test_a_long_name_is_cut_and_stays_unique() -> None:
    first = default_cassette_name("test_chat", "test_x[" + "a" * 300 + "]")
    second = default_cassette_name("test_chat", "test_x[" + "a" * 299 + "b]")
    assert len(first) == len(second) == MAX_NAME_LENGTH
    assert first != second
    assert valid_name(first) and valid_name(second)
