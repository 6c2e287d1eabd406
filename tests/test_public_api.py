"""The curated public API stays honest: every export exists and is documented."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import fakeupstream


def test_all_names_exist_and_are_unique() -> None:
    assert len(set(fakeupstream.__all__)) == len(fakeupstream.__all__)
    for name in fakeupstream.__all__:
        assert hasattr(fakeupstream, name), name


def test_public_classes_and_functions_have_docstrings() -> None:
    for name in fakeupstream.__all__:
        obj = getattr(fakeupstream, name)
        if callable(obj):
            assert obj.__doc__, name


@pytest.mark.parametrize(
    "module",
    [
        m.name
        for m in pkgutil.walk_packages(fakeupstream.__path__, "fakeupstream.")
        if not m.name.rpartition(".")[2].startswith("_")
    ],
)
def test_every_module_declares_what_it_exports(module: str) -> None:
    loaded = importlib.import_module(module)
    assert loaded.__doc__, module
    exported = getattr(loaded, "__all__", None)
    assert exported is not None, f"fakeupstream.{module} has no __all__"
    for name in exported:
        assert hasattr(loaded, name), f"fakeupstream.{module}.{name}"


def test_replay_failures_are_assertion_errors() -> None:
    assert issubclass(fakeupstream.MismatchError, AssertionError)
    assert issubclass(fakeupstream.UnplayedError, AssertionError)
    assert issubclass(fakeupstream.CassetteError, fakeupstream.FakeUpstreamError)
