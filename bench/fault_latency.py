"""Fault latency: how long a client of the gateway waits to learn each upstream failure.

Run from the checkout::

    python bench/fault_latency.py [--rounds R]

For each row of the gateway's failure contract (docs/faults.md), a client connects
through ``proxy.Gateway`` to a ``FakeUpstream`` with that fault armed, and the time
is measured from the last frame before the fault (or from the connect, for faults at
the upgrade) to the moment the client sees the outcome: an HTTP status or a close.
Each is printed next to the bound the contract gives for it (the keepalive, idle or
connect settings used here, or 1 s where the contract says "at once"), as a ratio;
the median of R rounds must be at most 1 (exit status 0, else 1).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fakeupstream import FakeUpstream, bundled_cassette_dir  # noqa: E402
from fakeupstream.faults import parse_fault_query  # noqa: E402
from proxy import Gateway, ProxyConfig  # noqa: E402

AUTH = {"Authorization": "Bearer sk-bench-not-a-key"}
CASSETTES = ROOT / "tests" / "proxy" / "cassettes"
SETTINGS = {
    "connect_timeout": 0.5,
    "ping_interval": 0.2,
    "ping_timeout": 0.2,
    "close_timeout": 0.2,
    "idle_timeout": 0.5,
}
KEEPALIVE = SETTINGS["ping_interval"] + SETTINGS["ping_timeout"] + SETTINGS["close_timeout"]
# (fault, cassette, what the client sees, bound in seconds)
ROWS: list[tuple[str, str, str, float]] = [
    ("kind=refuse&status=429&seconds=7", "stream_then_close", "HTTP 429", 1.0),
    ("kind=delay&seconds=30", "stream_then_close", "HTTP 504", SETTINGS["connect_timeout"] + 1),
    ("kind=accept_then_close&code=4000&reason=r", "stream_then_close", "close 4000", 1.0),
    ("kind=close&after=1&code=4000&reason=custom", "stream_then_close", "close 4000", 1.0),
    ("kind=reset&after=2", "stream_then_close", "close 1011", 1.0),
    ("kind=error&after=2&error=session_expired", "stream_then_close", "close 4000", 1.0),
    ("kind=stall&after=3", "stream_then_close", "close 1011", SETTINGS["idle_timeout"] * 1.25),
    ("kind=no_pong&after=1", "session", "close 1011", KEEPALIVE + SETTINGS["ping_interval"]),
]


async def one(fake: FakeUpstream, gateway: Gateway, query: str, cassette: str) -> tuple[str, float]:
    """Arm ``query`` for the next connection; return what the client saw and when."""
    fault, count = parse_fault_query(dict(item.split("=", 1) for item in query.split("&")))
    fake.faults.arm(fault, count)
    fake.use(cassette)
    mark = time.perf_counter()
    try:
        async with connect(
            gateway.realtime_url("gpt-realtime"), additional_headers=AUTH, compression=None
        ) as ws:
            try:
                while True:
                    await ws.recv()
                    mark = time.perf_counter()
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                return f"close {code}", time.perf_counter() - mark
    except InvalidStatus as exc:
        return f"HTTP {exc.response.status_code}", time.perf_counter() - mark


async def run(rounds: int) -> bool:
    results: dict[str, list[float]] = {query: [] for query, *_ in ROWS}
    ok = True
    with tempfile.TemporaryDirectory() as directory:
        for source in (
            CASSETTES / "stream_then_close.yaml",
            bundled_cassette_dir() / "session.yaml",
        ):
            shutil.copy(source, directory)
        async with FakeUpstream(directory) as fake:
            config = ProxyConfig(
                upstream=fake.http_url,
                connect_timeout=SETTINGS["connect_timeout"],
                ping_interval=SETTINGS["ping_interval"],
                ping_timeout=SETTINGS["ping_timeout"],
                close_timeout=SETTINGS["close_timeout"],
                idle_timeout=SETTINGS["idle_timeout"],
            )
            async with Gateway(config) as gateway:
                for _ in range(rounds):
                    for query, cassette, expected, _bound in ROWS:
                        seen, seconds = await asyncio.wait_for(
                            one(fake, gateway, query, cassette), timeout=10
                        )
                        if seen != expected:
                            print(f"{query}: expected {expected}, got {seen}")
                            ok = False
                        results[query].append(seconds)
    print(f"{'fault':45} {'client sees':12} {'median s':>9} {'bound s':>8} {'ratio':>6}")
    for query, _cassette, expected, bound in ROWS:
        median = statistics.median(results[query])
        ratio = median / bound
        ok = ok and ratio <= 1
        print(f"{query:45} {expected:12} {median:9.3f} {bound:8.2f} {ratio:6.2f}")
    print("PASS" if ok else "FAIL")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    return 0 if asyncio.run(run(args.rounds)) else 1


if __name__ == "__main__":
    sys.exit(main())
