"""What ``--tls`` costs: wss:// versus ws:// from the same fake, measured side by side.

Run from the checkout::

    python bench/tls_overhead.py [--frames N] [--connections C] [--rounds R] [--target 0.5]

It writes a cassette of N server text events of about 200 bytes, serves it from two
fake upstreams in this process, one plain and one with ``tls=True`` (the local CA, kept
in a temporary ``XDG_CACHE_HOME``), and measures, alternating which goes first in each
round: the stream throughput (frames/s from the open socket to the last frame) and the
connection rate (connect, receive ``session.created``, close; C times). It prints each
run, the medians, the ratios wss/ws, and PASS/FAIL for the throughput ratio against the
target (exit status 0 or 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fakeupstream import FakeUpstream  # noqa: E402

CASSETTE = "bench_stream"
FRAME_BYTES = 200
AUTH = {"Authorization": "Bearer sk-bench-not-a-key"}


def write_cassette(directory: Path, frames: int) -> None:
    lines = ["version: 1", "timeline:"]
    lines.append(
        "  - server: {type: session.created, event_id: event_0, session: {type: realtime}}"
    )
    for index in range(frames):
        delta = "x" * (FRAME_BYTES - 120)
        lines.append(
            f"  - server: {{type: response.output_text.delta, event_id: event_{index + 1}, "
            f"response_id: resp_b, item_id: item_b, output_index: 0, content_index: 0, "
            f"delta: {delta}}}"
        )
    lines.append("  - close: {code: 1000}")
    (directory / f"{CASSETTE}.yaml").write_text("\n".join(lines) + "\n")


async def stream(url: str, context: ssl.SSLContext | None) -> float:
    """Frames per second, from the open socket to the server's close."""
    received = 0
    async with connect(
        f"{url}/v1/realtime?model=gpt-realtime",
        additional_headers=AUTH,
        ssl=context,
        max_size=None,
        compression=None,
    ) as ws:
        started = time.perf_counter()
        try:
            async for _ in ws:
                received += 1
        except ConnectionClosed:
            pass
        elapsed = time.perf_counter() - started
    return received / elapsed


async def connections(url: str, context: ssl.SSLContext | None, count: int) -> float:
    """Connections per second: connect, read session.created, close."""
    started = time.perf_counter()
    for _ in range(count):
        async with connect(
            f"{url}/cassettes/session/v1/realtime?model=gpt-realtime",
            additional_headers=AUTH,
            ssl=context,
            compression=None,
        ) as ws:
            json.loads(await ws.recv())
    return count / (time.perf_counter() - started)


async def run(args: argparse.Namespace, directory: Path) -> int:
    write_cassette(directory, args.frames)
    # The bundled "session" cassette is reached by path prefix: copy it next to ours.
    bundled = ROOT / "cassettes" / "session.yaml"
    (directory / "session.yaml").write_text(bundled.read_text())
    async with (
        FakeUpstream(directory, CASSETTE) as plain,
        FakeUpstream(directory, CASSETTE, tls=True) as secure,
    ):
        assert secure.ca_certificate is not None
        context = ssl.create_default_context(cafile=str(secure.ca_certificate))
        sides = {"ws": (plain.url, None), "wss": (secure.url, context)}
        rates: dict[str, list[float]] = {"ws": [], "wss": []}
        setups: dict[str, list[float]] = {"ws": [], "wss": []}
        for number in range(args.rounds):
            order = ["ws", "wss"] if number % 2 == 0 else ["wss", "ws"]
            for side in order:
                url, ssl_context = sides[side]
                rates[side].append(await stream(url, ssl_context))
                setups[side].append(await connections(url, ssl_context, args.connections))
                print(
                    f"round {number + 1} {side:>3}: {rates[side][-1]:10.0f} frames/s  "
                    f"{setups[side][-1]:7.1f} connections/s"
                )
    ws_rate, wss_rate = statistics.median(rates["ws"]), statistics.median(rates["wss"])
    ws_setup, wss_setup = statistics.median(setups["ws"]), statistics.median(setups["wss"])
    ratio = wss_rate / ws_rate
    print(f"median ws : {ws_rate:10.0f} frames/s  {ws_setup:7.1f} connections/s")
    print(f"median wss: {wss_rate:10.0f} frames/s  {wss_setup:7.1f} connections/s")
    print(f"throughput ratio wss/ws: {ratio:.2f} (target >= {args.target:.2f})")
    print(f"connection ratio wss/ws: {wss_setup / ws_setup:.2f}")
    passed = ratio >= args.target
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=5000, help="events per stream")
    parser.add_argument("--connections", type=int, default=50, help="connections per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (sides alternate)")
    parser.add_argument("--target", type=float, default=0.5, help="minimum throughput ratio")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        # The local CA goes into the temporary directory, never the user's cache.
        os.environ["XDG_CACHE_HOME"] = str(directory / "cache")
        (directory / "cassettes").mkdir()
        return asyncio.run(run(args, directory / "cassettes"))


if __name__ == "__main__":
    sys.exit(main())
