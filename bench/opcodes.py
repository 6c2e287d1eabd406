"""Bytecodes per session setup: how much Python each server runs, without the noise of a clock.

    python bench/opcodes.py [--sessions 200] [--baseline DIR] [--json FILE]

Seconds move with everything else on the machine; the number of bytecodes a server
executes for the same work does not. Each server (the bare websockets server,
fakeupstream, and with ``--baseline`` fakeupstream from that checkout) runs under a
counter (``sys.settrace`` with opcode events, on its event loop's thread) switched on
after 30 warm-up sessions; then ``--sessions`` setups (open, ``session.created``,
close, as in ``session_setup.py``) run one after another, and the count is divided
by them. The count includes everything the server runs: websockets, asyncio and
the standard library, not only fakeupstream. It is the same run after run, give
or take a few bytecodes per session (timers, collections).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import runpy
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from harness import (
    BENCH,
    bare_argv,
    checkout,
    fake_argv,
    load_exchange,
    server_process,
    write_bare_exchange,
    write_results,
)
from session_setup import CASSETTE, setups

WARM_UP = 30
_COUNT_FILE = "FAKEUPSTREAM_BENCH_OPCODES"  # where a counted server writes its count


def counted(argv: list[str]) -> None:
    """Run ``argv`` (``-m module ...`` or ``script ...``) with the counter (``--serve``).

    SIGUSR1 starts counting, SIGUSR2 stops and writes the count to the file named by
    the environment variable ``FAKEUPSTREAM_BENCH_OPCODES``.
    """
    count = [0]

    def opcode(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            count[0] += 1
        return opcode

    def call(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        return opcode

    def start(*_: object) -> None:
        count[0] = 0
        sys.settrace(call)

    def stop(*_: object) -> None:
        sys.settrace(None)
        Path(os.environ[_COUNT_FILE]).write_text(str(count[0]))

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    if argv[0] == "-m":
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")


async def count(name: str, argv: list[str], cwd: Path, workdir: Path, sessions: int) -> float:
    """Bytecodes per setup session of the server ``python argv``."""
    out = workdir / f"{name}.count"
    os.environ[_COUNT_FILE] = os.fspath(out)
    wrapped = [os.fspath(BENCH / "opcodes.py"), "--serve", *argv]
    async with server_process(name, wrapped, workdir / f"{name}.log", cwd=cwd) as server:
        url = f"{server.url}/v1/realtime?model=bench"
        await setups(url, WARM_UP)
        os.kill(server.pid, signal.SIGUSR1)
        await asyncio.sleep(0.2)  # the signal is handled between two bytecodes
        await setups(url, sessions)
        os.kill(server.pid, signal.SIGUSR2)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if out.exists():
                return int(out.read_text()) / sessions
    raise RuntimeError(f"{name}: no count written")


async def run(args: argparse.Namespace) -> dict[str, float]:
    from fakeupstream.storage.library import bundled_cassette_dir

    with tempfile.TemporaryDirectory(prefix="opcodes-bench-") as tmp:
        workdir = Path(tmp)
        exchange = write_bare_exchange(load_exchange(CASSETTE), workdir / "turns.json")
        fake = fake_argv(bundled_cassette_dir(), CASSETTE)
        servers = {"bare": (bare_argv("exchange", os.fspath(exchange)), BENCH.parent)}
        servers["fake"] = (fake, BENCH.parent)
        if args.baseline is not None:
            servers["baseline"] = (fake, args.baseline)
        return {
            name: await count(name, argv, cwd, workdir, args.sessions)
            for name, (argv, cwd) in servers.items()
        }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        counted(argv[1:])
        return 0
    parser = argparse.ArgumentParser(
        prog="python bench/opcodes.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sessions", type=int, default=200, help="counted setups per server")
    parser.add_argument(
        "--baseline", type=checkout, help="also count fakeupstream from this checkout"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    try:
        per_session = asyncio.run(run(args))
    except (RuntimeError, OSError) as exc:
        print(f"opcodes: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"bytecodes per session setup ({args.sessions} counted, after {WARM_UP}):")
    for name, value in per_session.items():
        ratio = value / per_session["bare"]
        print(f"  {name:<8} {value:>9,.0f}   {ratio:.2f}x the bare server")
    write_results(args.json, "opcodes", {"sessions": args.sessions, "per_session": per_session})
    return 0


if __name__ == "__main__":
    sys.exit(main())
