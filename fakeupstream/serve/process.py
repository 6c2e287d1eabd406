"""Process-wide settings for a process that does nothing but serve (``fakeupstream serve``).

Python's cyclic garbage collector runs a young collection every 700 net container
allocations. A server holding a thousand sessions at once allocates that many
in a fraction of a millisecond, and each collection promotes the live sessions'
state, so the old generations fill and get walked again and again, along with
every report kept for the admin API. Measured with 1,000 concurrent
``text_response`` sessions per batch (gc callbacks timing each collection): the
default thresholds spent 170 to 280 ms collecting per 1,000 sessions once a few
thousand reports were kept, about a fifth of the server's CPU; a young threshold
of 20,000 spent 40 to 60 ms. Nothing here leaks more: reference counting frees
almost everything, and the collector still runs, only less often.

The same process also drops what its log records never show (the logging HOWTO's
"Optimization" settings): where each call was made from, the thread's and the
process's names. Counting instructions with valgrind, a session that ends after its
first event cost 19,000 fewer.

Only the command line applies this, to a process it owns; a ``FakeUpstream``
started inside someone's test process leaves their collector and logging alone.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["SERVING_GC_THRESHOLDS", "tune_for_serving"]

SERVING_GC_THRESHOLDS = (20_000, 20, 10)
"""``gc.set_threshold`` for a serving process (CPython's default is ``(700, 10, 10)``)."""


def tune_for_serving() -> None:
    """Set the collector for serving, once the process has loaded what it serves.

    What startup allocated (modules, the cassette) is frozen out of the
    collector's view: it lives as long as the process, so walking it at every
    full collection is wasted.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)
    # The logging HOWTO's "Optimization" settings: the per-connection line shows only
    # the time and the message, so no record needs where it was logged from (a stack
    # walk per record), nor the thread's or process's name.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
