"""A serving process collects garbage less often, and never walks what startup loaded."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

from fakeupstream.serve.process import SERVING_GC_THRESHOLDS, tune_for_serving

_LOGGING_FLAGS = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    flags = {name: getattr(logging, name) for name in _LOGGING_FLAGS}
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        for name, value in flags.items():
            setattr(logging, name, value)


@pytest.mark.usefixtures("restored_collector")
def test_tune_for_serving_raises_the_young_threshold_and_freezes_startup() -> None:
    assert gc.get_freeze_count() == 0
    tune_for_serving()
    assert gc.get_threshold() == SERVING_GC_THRESHOLDS
    assert SERVING_GC_THRESHOLDS[0] > 700  # CPython's default young threshold
    assert gc.get_freeze_count() > 0  # modules and loaded cassettes: out of every walk
    assert gc.isenabled()  # cycles are still collected, only less often
    # Log records skip what the one-line-per-connection format never shows.
    assert logging._srcfile is None
    assert not (logging.logThreads or logging.logProcesses or logging.logMultiprocessing)
