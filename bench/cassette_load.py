"""Cassette loading cost: time and peak memory against ``json.loads`` of the same events.

Run from the checkout::

    python bench/cassette_load.py [--mb 50] [--check]

It builds a cassette of small server events (``response.output_text.delta``, about
160 bytes each, as the recorder writes them) of about ``--mb`` megabytes, and the same
events as one JSON array. It loads each in this process, measuring wall time, then
(in a second load) the peak of Python allocations (``tracemalloc``), and prints both,
their ratios, and the
figures against the targets of issue 12: 50 MB in under 10 s (scaled to the size
measured) and a peak under 5x the file size. ``--check`` exits 1 when a target is
missed. Loading is near linear, so a smaller ``--mb`` gives the same ratios faster.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakeupstream.cassette import Cassette, Direction, Episode, FrameStep
from fakeupstream.storage.yaml_dumper import dumps_cassette
from fakeupstream.storage.yaml_reader import loads_cassette

TARGET_SECONDS_PER_50_MB = 10.0
TARGET_MEMORY_RATIO = 5.0


def events(count: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "response.output_text.delta",
            "event_id": f"event_{n:010d}",
            "response_id": "resp_C9ZkL3x7bQ2mN8pR4tY6w",
            "item_id": "item_C9ZkL3x7bQ2mN8pR4tY6w",
            "output_index": 0,
            "content_index": 0,
            "delta": f" word{n % 97}",
        }
        for n in range(count)
    ]


def measure(load: Callable[[], object]) -> tuple[float, int]:
    """Seconds taken, and peak bytes allocated, while loading.

    Two loads: one timed, one traced (``tracemalloc`` makes allocations several times
    slower, so a traced load's time would say more about tracing than about loading).
    """
    gc.collect()
    started = time.perf_counter()
    result = load()
    elapsed = time.perf_counter() - started
    del result
    gc.collect()
    tracemalloc.start()
    result = load()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return elapsed, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="cassette size (default: 50)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    def dumped(count: int) -> int:
        steps = tuple(FrameStep(Direction.SERVER, event) for event in events(count))
        return len(dumps_cassette(Cassette("bench", episodes=(Episode(timeline=steps),))))

    per_event = max(1, (dumped(101) - dumped(1)) // 100)
    count = max(1, int(args.mb * 1_000_000 / per_event))
    timeline = tuple(FrameStep(Direction.SERVER, event) for event in events(count))
    text = dumps_cassette(Cassette("bench", episodes=(Episode(timeline=timeline),)))
    as_json = json.dumps([step.data for step in timeline])
    del timeline
    size = len(text.encode())

    json_time, json_peak = measure(lambda: json.loads(as_json))
    yaml_time, yaml_peak = measure(lambda: loads_cassette(text, name="bench"))
    scaled = yaml_time * 50_000_000 / size
    print(f"events: {count}, cassette: {size / 1e6:.1f} MB, json: {len(as_json) / 1e6:.1f} MB")
    print(f"json.loads     {json_time:8.2f} s  peak {json_peak / 1e6:8.1f} MB")
    print(f"loads_cassette {yaml_time:8.2f} s  peak {yaml_peak / 1e6:8.1f} MB")
    print(f"time ratio (cassette / json.loads): {yaml_time / json_time:.1f}x")
    print(
        f"memory: cassette peak / file size {yaml_peak / size:.1f}x "
        f"(json.loads: {json_peak / len(as_json):.1f}x)"
    )
    time_ok = scaled <= TARGET_SECONDS_PER_50_MB
    memory_ok = yaml_peak / size <= TARGET_MEMORY_RATIO
    print(
        f"target time: {scaled:.1f} s per 50 MB (<= {TARGET_SECONDS_PER_50_MB:g}): "
        f"{'PASS' if time_ok else 'FAIL'}"
    )
    print(
        f"target memory: {yaml_peak / size:.1f}x the file (<= {TARGET_MEMORY_RATIO:g}x): "
        f"{'PASS' if memory_ok else 'FAIL'}"
    )
    return 1 if args.check and not (time_ok and memory_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
