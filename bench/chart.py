"""Draw the benchmark results as one PNG (needs the ``bench`` extra: matplotlib).

    python bench/chart.py RESULTS.json... --output docs/performance.png

Each ``RESULTS.json`` is what a benchmark wrote with ``--json``
(``replay_throughput``, ``session_setup``, ``concurrent_sessions``). Every panel
shows each server's median with its min-max over the rounds, so the spread of a
noisy machine is visible next to the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

COLORS = {
    "bare": "#888888",
    "fake": "#1f77b4",
    "baseline": "#ff7f0e",
    "proxy": "#2ca02c",
}


def color(name: str) -> str:
    return COLORS.get(name, "#9467bd")  # fake-Nw and anything else


def bars(axis: Any, values: dict[str, list[float]], title: str, unit: str) -> None:
    """One bar per server: the median, with the min-max as an error bar."""
    names = list(values)
    medians = [statistics.median(values[name]) for name in names]
    low = [m - min(values[name]) for m, name in zip(medians, names, strict=True)]
    high = [max(values[name]) - m for m, name in zip(medians, names, strict=True)]
    axis.bar(names, medians, yerr=[low, high], capsize=4, color=[color(n) for n in names])
    axis.set_title(title, fontsize=10)
    axis.set_ylabel(unit)


def concurrent(axes: tuple[Any, Any], document: dict[str, Any]) -> None:
    """Sessions/s and p99 against N, one line per server."""
    runs: dict[str, dict[str, dict[str, list[float]]]] = document["runs"]
    sizes = sorted(runs, key=int)
    rate_axis, p99_axis = axes
    for name in runs[sizes[0]]:
        for axis, key in ((rate_axis, "rate"), (p99_axis, "p99")):
            medians = [statistics.median(runs[n][name][key]) for n in sizes]
            axis.plot([int(n) for n in sizes], medians, marker="o", label=name, color=color(name))
    rate_axis.set_title("N concurrent text_response sessions", fontsize=10)
    rate_axis.set_ylabel("sessions/s")
    p99_axis.set_title("p99 session time (lower is better)", fontsize=10)
    p99_axis.set_ylabel("seconds")
    for axis in axes:
        axis.set_xlabel("N (sessions at once)")
        axis.legend(fontsize=8)


def draw(documents: list[dict[str, Any]], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    by_name = {document["benchmark"]: document for document in documents}
    panels = ("replay_throughput" in by_name) + ("session_setup" in by_name)
    panels += 2 * ("concurrent_sessions" in by_name)
    if not panels:
        raise ValueError("no benchmark results among the files given")
    figure, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.8), squeeze=False)
    row = list(axes[0])
    if "replay_throughput" in by_name:
        document = by_name["replay_throughput"]
        bars(row.pop(0), document["frames_per_s"], "replay: one streamed response", "frames/s")
    if "session_setup" in by_name:
        document = by_name["session_setup"]
        bars(row.pop(0), document["sessions_per_s"], "setup: open, first event, close", "/s")
    if "concurrent_sessions" in by_name:
        concurrent((row.pop(0), row.pop(0)), by_name["concurrent_sessions"])
    machine = documents[0]["machine"]
    figure.suptitle(
        f"fakeupstream vs a bare websockets server ({machine['cpus']} CPUs, "
        f"load {machine['loadavg'][0]}, Python {machine['python']})",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/chart.py", description=__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="files written with --json")
    parser.add_argument("--output", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    try:
        documents = [json.loads(path.read_text(encoding="utf-8")) for path in args.results]
        draw(documents, args.output)
    except ImportError:
        print("chart: needs matplotlib: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"chart: error: {exc!r}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
