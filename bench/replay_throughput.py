"""Replay throughput: frames/s from ``fakeupstream serve`` versus a bare websockets server.

    python bench/replay_throughput.py [--frames 10000] [--rounds 20] [--target 0.9]
                                      [--baseline DIR] [--json FILE]

Both servers stream the same N text events of ~200 bytes (a streamed
``response.output_text.delta``) to one client, then close: fakeupstream from a
cassette at speed 0, the anchor (``bench/bare_server.py stream``) from frames
encoded before the first connection, with ``send()`` per frame. Timing runs
from the moment the WebSocket is open to the last frame. It prints each round,
the medians, server CPU per frame, how long the first frame took, and the
fake/bare ratio (the median of the rounds' own ratios: each round runs every
server once, so both share the rest of the machine's load) against the target
(exit status 1 below it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from harness import (
    AUTH,
    add_common_arguments,
    bare_argv,
    cpu_seconds,
    fake_argv,
    median,
    paired_ratio,
    rounds_order,
    servers,
    spread,
    verdict,
    write_results,
)
from relay_throughput import CASSETTE, FRAME_BYTES, delta_event, write_cassette
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def receive_stream(url: str, frames: int) -> tuple[float, float]:
    """Receive the whole stream once; return frames per second, and the seconds from
    the open connection to the first frame."""
    async with connect(url, additional_headers=AUTH, compression=None, max_size=None) as ws:
        received = 0
        started = time.perf_counter()
        try:
            await ws.recv()
            first = time.perf_counter() - started
            received += 1
            while True:
                await ws.recv()
                received += 1
        except ConnectionClosed:
            elapsed = time.perf_counter() - started
    if received != frames:
        raise RuntimeError(f"{url}: received {received} frames, expected {frames}")
    return received / elapsed, first


async def run(args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        workdir = Path(tmp)
        write_cassette(workdir, args.frames)
        frames_file = workdir / "frames.txt"
        frames_file.write_text("\n".join(delta_event(i) for i in range(args.frames)) + "\n")
        anchor = bare_argv("stream", str(frames_file))
        async with servers(workdir, anchor, fake_argv(workdir, CASSETTE), args.baseline) as started:
            urls = {server.name: f"{server.url}/v1/realtime?model=bench" for server in started}
            pids = {server.name: server.pid for server in started}
            for url in urls.values():  # warm-up: imports, the cassette cache
                await receive_stream(url, args.frames)
            rates: dict[str, list[float]] = {name: [] for name in urls}
            cpu: dict[str, list[float]] = {name: [] for name in urls}
            first: dict[str, list[float]] = {name: [] for name in urls}
            for round_ in range(args.rounds):
                for name in rounds_order(list(urls), round_):
                    before = cpu_seconds(pids[name])
                    rate, latency = await receive_stream(urls[name], args.frames)
                    rates[name].append(rate)
                    first[name].append(latency)
                    cpu[name].append((cpu_seconds(pids[name]) - before) / args.frames * 1e6)
                line = "   ".join(f"{name} {rates[name][-1]:>9,.0f}" for name in urls)
                print(f"round {round_ + 1}: {line} frames/s", flush=True)
    print(f"frames: {args.frames} x {FRAME_BYTES} bytes, rounds: {args.rounds}")
    for name in rates:
        print(
            f"  {name:<8} {median(rates[name]):>9,.0f} frames/s (median; {spread(rates[name])})"
            f"   server CPU {median(cpu[name]):.1f} us/frame"
            f"   first frame {median(first[name]) * 1e3:.2f} ms"
        )
    ratio = paired_ratio(rates["fake"], rates["bare"])
    results = {
        "frames": args.frames,
        "rounds": args.rounds,
        "frames_per_s": rates,
        "cpu_us_per_frame": cpu,
        "first_frame_s": first,
        "ratio": ratio,
        "ratio_of_medians": median(rates["fake"]) / median(rates["bare"]),
        "target": args.target,
    }
    print(f"  (ratio of the medians above: {results['ratio_of_medians']:.2f})")
    if "baseline" in rates:
        before = paired_ratio(rates["baseline"], rates["bare"])
        results["baseline_ratio"] = before
        print(f"  baseline/bare {before:.2f} (median of the rounds' ratios)")
    print(f"  fake/bare {verdict(ratio, args.target)} (median of the rounds' ratios)")
    write_results(args.json, "replay_throughput", results)
    return ratio >= args.target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/replay_throughput.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--frames", type=int, default=10_000, help="events per stream")
    parser.add_argument("--target", type=float, default=0.9, help="minimum fake/bare ratio")
    add_common_arguments(parser, rounds=20)
    args = parser.parse_args(argv)
    if args.frames < 1 or args.rounds < 1:
        parser.error("--frames and --rounds must be at least 1")
    try:
        ok = asyncio.run(run(args))
    except (RuntimeError, OSError) as exc:
        print(f"replay_throughput: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
