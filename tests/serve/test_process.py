"""A serving process collects garbage less often, and never walks what startup loaded."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from fakeupstream.serve.process import SERVING_GC_THRESHOLDS, tune_for_serving


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_tune_for_serving_raises_the_young_threshold_and_freezes_startup() -> None:
    assert gc.get_freeze_count() == 0
    tune_for_serving()
    assert gc.get_threshold() == SERVING_GC_THRESHOLDS
    assert SERVING_GC_THRESHOLDS[0] > 700  # CPython's default young threshold
    assert gc.get_freeze_count() > 0  # modules and loaded cassettes: out of every walk
    assert gc.isenabled()  # cycles are still collected, only less often
