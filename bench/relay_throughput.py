"""Relay throughput: frames/s through the gateway versus straight from the fake upstream.

Run from the checkout::

    python bench/relay_throughput.py [--frames N] [--rounds R] [--target 0.8]

It writes a cassette of N server text events of about 200 bytes (what a
streaming ``response.output_text.delta`` looks like), then starts two
processes: ``python -m fakeupstream serve`` replaying it at speed 0, and
``python -m proxy`` in front of it. A client in this process receives the
whole stream, directly from the fake and through the gateway, alternating
which goes first in each round so that warm-up and noise hit both sides
alike. It prints each run, the medians, their ratio, and PASS/FAIL against
the target (exit status 0 or 1). Both servers always get stopped.

Timing runs from the moment the WebSocket is open to the last frame; the
upgrade itself is not part of the throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
CASSETTE = "bench_stream"
FRAME_BYTES = 200
START_TIMEOUT = 30.0
AUTH = {"Authorization": "Bearer sk-bench-not-a-key"}


def delta_event(index: int) -> str:
    """One compact JSON text event of exactly ``FRAME_BYTES`` bytes."""
    event = {
        "type": "response.output_text.delta",
        "event_id": f"event_{index:010d}",
        "response_id": "resp_bench",
        "item_id": "item_bench",
        "output_index": 0,
        "content_index": 0,
        "delta": "",
    }
    padding = FRAME_BYTES - len(json.dumps(event, separators=(",", ":")))
    event["delta"] = "x" * max(padding, 1)
    return json.dumps(event, separators=(",", ":"))


def write_cassette(directory: Path, frames: int) -> None:
    """Write a cassette streaming ``frames`` events right after connect, then close 1000."""
    lines = [
        "version: 1",
        f'description: "Benchmark: {frames} text events of {FRAME_BYTES} bytes, then close."',
        "timeline:",
    ]
    # A JSON object is valid YAML flow syntax, so each event is one line.
    lines += [f"  - server: {delta_event(i)}" for i in range(frames)]
    lines.append('  - close: {code: 1000, reason: "end of stream"}')
    (directory / f"{CASSETTE}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def tail(log: Path) -> str:
    """The end of a server's log, to show why it did not start."""
    return log.read_text(errors="replace")[-2000:]


@contextlib.asynccontextmanager
async def server_process(name: str, args: list[str], log: Path) -> AsyncIterator[tuple[str, int]]:
    """Start ``python -m <args>``; yield its URL (``listening on`` line) and pid; stop it."""
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *args,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
        try:
            assert process.stdout is not None
            async with asyncio.timeout(START_TIMEOUT):
                line = (await process.stdout.readline()).decode().strip()
            if not line.startswith("listening on "):
                raise RuntimeError(f"{name} did not start (got {line!r}):\n" + tail(log))
            yield line.removeprefix("listening on "), process.pid
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    async with asyncio.timeout(10):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) used so far by ``pid``, or by this process."""
    if pid is None:
        return time.process_time()
    try:  # Linux: fields 14 and 15 of /proc/PID/stat, in clock ticks
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


async def receive_stream(url: str, frames: int) -> float:
    """Receive the whole stream once; return frames per second."""
    async with connect(url, additional_headers=AUTH, compression=None, max_size=None) as ws:
        received = 0
        started = time.perf_counter()
        try:
            while True:
                await ws.recv()
                received += 1
        except ConnectionClosed:
            elapsed = time.perf_counter() - started
    if received != frames:
        raise RuntimeError(f"{url}: received {received} frames, expected {frames}")
    return received / elapsed


async def run(frames: int, rounds: int, target: float) -> bool:
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        directory = Path(tmp)
        write_cassette(directory, frames)
        fake_args = ["fakeupstream", "serve", "--port", "0"]
        fake_args += ["--cassette-dir", str(directory), "--cassette", CASSETTE]
        async with server_process("fakeupstream", fake_args, directory / "fake.log") as fake:
            fake_url, fake_pid = fake
            proxy_args = ["proxy", "--port", "0", "--log-level", "warning"]
            proxy_args += ["--upstream", fake_url.replace("ws://", "http://", 1)]
            async with server_process("proxy", proxy_args, directory / "proxy.log") as proxy:
                proxy_url, proxy_pid = proxy
                urls = {
                    "direct": f"{fake_url}/v1/realtime?model=bench",
                    "proxy": f"{proxy_url}/v1/realtime?model=bench",
                }
                pids = {"fake": fake_pid, "proxy": proxy_pid, "client": None}
                for url in urls.values():  # warm-up: cassette cache, imports
                    await receive_stream(url, frames)
                rates: dict[str, list[float]] = {"direct": [], "proxy": []}
                cpu: dict[str, dict[str, list[float]]] = {"direct": {}, "proxy": {}}
                for round_ in range(rounds):
                    order = ["direct", "proxy"] if round_ % 2 == 0 else ["proxy", "direct"]
                    for kind in order:
                        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                        rates[kind].append(await receive_stream(urls[kind], frames))
                        for name, pid in pids.items():
                            used = (cpu_seconds(pid) - before[name]) / frames * 1e6
                            cpu[kind].setdefault(name, []).append(used)
                    print(
                        f"round {round_ + 1}: direct {rates['direct'][-1]:>9,.0f} frames/s"
                        f"   proxy {rates['proxy'][-1]:>9,.0f} frames/s",
                        flush=True,
                    )
    direct = statistics.median(rates["direct"])
    proxied = statistics.median(rates["proxy"])
    ratio = proxied / direct
    ok = ratio >= target
    print(f"frames: {frames} x {FRAME_BYTES} bytes, rounds: {rounds}, cpus: {os.cpu_count()}")
    for kind, rate in (("direct", direct), ("proxy", proxied)):
        used = ", ".join(
            f"{name} {statistics.median(values):.1f}" for name, values in cpu[kind].items()
        )
        print(f"  {kind:<7} {rate:>9,.0f} frames/s (median)   CPU us/frame: {used}")
    print(f"  ratio   {ratio:.2f} (target >= {target:.2f}): {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/relay_throughput.py",
        description="Relay throughput through the gateway versus a direct connection.",
    )
    parser.add_argument("--frames", type=int, default=20_000, help="events per stream")
    parser.add_argument("--rounds", type=int, default=5, help="measured runs of each kind")
    parser.add_argument("--target", type=float, default=0.8, help="minimum proxy/direct ratio")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.rounds < 1:
        parser.error("--frames and --rounds must be at least 1")
    try:
        ok = asyncio.run(run(args.frames, args.rounds, args.target))
    except (RuntimeError, OSError) as exc:
        print(f"relay_throughput: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    # Let `python bench/relay_throughput.py` import the checkout's packages.
    sys.path.insert(0, os.fspath(ROOT))
    sys.exit(main())
