"""Session setup rate: open, ``session.created``, close, one after another, fake vs bare.

    python bench/session_setup.py [--sessions 50] [--rounds 40] [--target 0.9]
                                  [--baseline DIR] [--json FILE]

Each session opens a WebSocket (the whole upgrade: the fake plans the connection,
selects and loads the cassette, decides the handshake), waits for the first
event, and closes. fakeupstream replays ``text_response``; the anchor
(``bench/bare_server.py exchange``) sends the same pre-encoded ``session.created``.
Rounds are short and many, each running every server once (in rotating order),
and the fake/bare ratio is the median of the rounds' ratios: a round's two
servers share whatever else loads the machine in that second. It prints
sessions/s per round, the medians, server CPU per session, and that ratio
against the target (exit status 1 below it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
    load_exchange,
    median,
    paired_ratio,
    rounds_order,
    servers,
    spread,
    verdict,
    write_bare_exchange,
    write_results,
)
from websockets.asyncio.client import connect

CASSETTE = "text_response"


async def setups(url: str, sessions: int, phases: list[tuple[float, float]] | None = None) -> float:
    """Open, receive the first event and close ``sessions`` times; return sessions/s.

    With ``phases``, append each session's seconds to open (the 101 read) and from
    then to its first event.
    """
    started = time.perf_counter()
    for _ in range(sessions):
        opening = time.perf_counter()
        async with connect(url, additional_headers=AUTH, compression=None) as ws:
            opened = time.perf_counter()
            first = json.loads(await ws.recv())
            if phases is not None:
                phases.append((opened - opening, time.perf_counter() - opened))
            if first.get("type") != "session.created":
                raise RuntimeError(f"{url}: first event {first.get('type')!r}")
    return sessions / (time.perf_counter() - started)


async def run(args: argparse.Namespace) -> bool:
    from fakeupstream.storage.library import bundled_cassette_dir

    exchange = load_exchange(CASSETTE)
    with tempfile.TemporaryDirectory(prefix="setup-bench-") as tmp:
        workdir = Path(tmp)
        anchor = bare_argv("exchange", str(write_bare_exchange(exchange, workdir / "turns.json")))
        fake = fake_argv(bundled_cassette_dir(), CASSETTE)
        async with servers(workdir, anchor, fake, args.baseline) as started:
            urls = {server.name: f"{server.url}/v1/realtime?model=bench" for server in started}
            pids = {server.name: server.pid for server in started}
            for url in urls.values():  # warm-up
                await setups(url, min(args.sessions, 50))
            rates: dict[str, list[float]] = {name: [] for name in urls}
            cpu: dict[str, list[float]] = {name: [] for name in urls}
            phases: dict[str, list[tuple[float, float]]] = {name: [] for name in urls}
            for round_ in range(args.rounds):
                for name in rounds_order(list(urls), round_):
                    before = cpu_seconds(pids[name])
                    rates[name].append(await setups(urls[name], args.sessions, phases[name]))
                    cpu[name].append((cpu_seconds(pids[name]) - before) / args.sessions * 1e6)
                line = "   ".join(f"{name} {rates[name][-1]:>7,.0f}" for name in urls)
                print(f"round {round_ + 1}: {line} sessions/s", flush=True)
    print(f"sessions: {args.sessions} one after another, rounds: {args.rounds}")
    for name in rates:
        print(
            f"  {name:<8} {median(rates[name]):>7,.0f} sessions/s (median; {spread(rates[name])})"
            f"   server CPU {median(cpu[name]):,.0f} us/session"
        )
        opening = median([open_ for open_, _ in phases[name]]) * 1e6
        first = median([first for _, first in phases[name]]) * 1e6
        print(f"  {'':<8} open {opening:,.0f} us, then the first event {first:,.0f} us (medians)")
    ratio = paired_ratio(rates["fake"], rates["bare"])
    results = {
        "sessions": args.sessions,
        "rounds": args.rounds,
        "sessions_per_s": rates,
        "cpu_us_per_session": cpu,
        "open_then_first_s": phases,
        "ratio": ratio,
        "ratio_of_medians": median(rates["fake"]) / median(rates["bare"]),
        "target": args.target,
    }
    print(f"  (ratio of the medians above: {results['ratio_of_medians']:.2f})")
    if "baseline" in rates:
        results["baseline_ratio"] = paired_ratio(rates["baseline"], rates["bare"])
        print(f"  baseline/bare {results['baseline_ratio']:.2f} (median of the rounds' ratios)")
    print(f"  fake/bare {verdict(ratio, args.target)} (median of the rounds' ratios)")
    write_results(args.json, "session_setup", results)
    return ratio >= args.target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/session_setup.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sessions", type=int, default=50, help="sessions per round")
    parser.add_argument("--target", type=float, default=0.9, help="minimum fake/bare ratio")
    add_common_arguments(parser, rounds=40)
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.rounds < 1:
        parser.error("--sessions and --rounds must be at least 1")
    try:
        ok = asyncio.run(run(args))
    except (RuntimeError, OSError) as exc:
        print(f"session_setup: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
