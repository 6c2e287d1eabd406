"""N concurrent full ``text_response`` sessions: fakeupstream vs a hand-written server.

    python bench/concurrent_sessions.py [--sessions 100 1000 2000] [--rounds 5]
                                        [--client lean|websockets] [--workers N]
                                        [--proxy] [--baseline DIR] [--json FILE]

Every session is the whole GA text flow: open, ``session.created``,
``session.update``, the user message, ``response.create``, the streamed reply,
close. All N start at once. fakeupstream replays the bundled ``text_response``
cassette at speed 0; the anchor (``bench/bare_server.py exchange``) plays the
same pre-encoded events, turn by turn, with no cassette machinery. With
``--proxy``, the same sessions also go through ``python -m proxy`` in front of
the fake (proxy vs direct).

The client (``--client``) is by default the lean one (:mod:`lean_client`: plain
asyncio Protocols, every frame built once per run), which needs a fraction of
the server's CPU per session; ``websockets`` uses the ``websockets`` library's
client, which needs about as much as the server, so on a small machine it takes
the core a second worker (``--workers 2``) would use.

For each server and N it prints sessions/s (N over the wall time of the
batch), p50 and p99 of the session time (open to close), server and client CPU
per session, and, in a separate phase, the memory per open idle session (RSS
growth with N sessions that got ``session.created`` and wait). Ratios are
fake/bare; the targets are ``--target-rate`` (sessions/s, higher is better)
and ``--target-p99`` (p99, lower is better) at 1,000 sessions or the largest N.

Causal order is checked in every session: the event types must arrive exactly
as recorded, and no event of a turn may already have arrived when the client
sends the frame that turn answers (a server that sent ahead at speed 0 would be
caught: exactly by the lean client, which sees every byte that has arrived; by
probing with the ``websockets`` one). Any violation fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lean_client
from harness import (
    AUTH,
    ROOT,
    CausalityError,
    Exchange,
    Server,
    bare_argv,
    checkout,
    cpu_seconds,
    fake_argv,
    load_exchange,
    median,
    paired_ratio,
    percentile,
    raise_open_files_limit,
    rounds_order,
    rss_bytes,
    server_process,
    servers,
    verdict,
    write_bare_exchange,
    write_results,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

CASSETTE = "text_response"
MEMORY_TARGET = 100 * 1024
_BROKEN = 3  # a client process's exit status when causal order was broken
CLIENTS = ("lean", "websockets")


async def arrived_already(ws: ClientConnection) -> str | None:
    """The next message if it has already arrived, else ``None`` (nothing is lost).

    ``recv()`` returns at once when a message is queued, and cancelling it is safe.
    """
    probe = asyncio.ensure_future(ws.recv())
    await asyncio.sleep(0)
    if probe.done():
        return str(probe.result())
    probe.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await probe
    return None


async def one_session(url: str, exchange: Exchange) -> float:
    """Play the whole exchange once, checking causal order; return its duration."""
    started = time.perf_counter()
    async with connect(url, additional_headers=AUTH, compression=None, open_timeout=120) as ws:
        for number, (client, types) in enumerate(exchange.turns):
            if client is not None:
                early = await arrived_already(ws)
                if early is not None:
                    raise CausalityError(
                        f"turn {number}: {json.loads(early).get('type')!r} arrived before "
                        "the client frame it answers was sent"
                    )
                await ws.send(client)
            for expected in types:
                got = json.loads(await ws.recv()).get("type")
                if got != expected:
                    raise CausalityError(f"turn {number}: expected {expected!r}, got {got!r}")
    return time.perf_counter() - started


async def sessions_at_once(url: str, exchange: Exchange, sessions: int, client: str) -> list[float]:
    """Run ``sessions`` at once with ``client``; return each session's duration."""
    if client == "lean":
        return await lean_client.run_sessions(url, exchange, sessions)
    return list(await asyncio.gather(*(one_session(url, exchange) for _ in range(sessions))))


async def batch(
    url: str, exchange: Exchange, sessions: int, clients: int = 1, client: str = "lean"
) -> tuple[float, list[float], float]:
    """Run ``sessions`` at once; return (sessions/s, each session's duration, client CPU s).

    With ``clients`` above 1 the sessions are shared among that many client processes
    (this script with ``--child``), so one client core is not the limit.
    """
    if clients <= 1:
        cpu = time.process_time()
        started = time.perf_counter()
        times = await sessions_at_once(url, exchange, sessions, client)
        elapsed = time.perf_counter() - started
        return sessions / elapsed, times, time.process_time() - cpu
    shares = [sessions // clients + (i < sessions % clients) for i in range(clients)]
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--child",
            url,
            "--sessions",
            str(share),
            "--client",
            client,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for share in shares
        if share
    ]
    try:
        for child in children:  # every client has imported everything and waits
            assert child.stdout is not None
            if (await child.stdout.readline()).strip() != b"ready":
                raise RuntimeError("a client process did not start")
        started = time.perf_counter()
        outputs = await asyncio.gather(*(child.communicate(b"go\n") for child in children))
        elapsed = time.perf_counter() - started
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    times: list[float] = []
    cpu = 0.0
    for child, (out, _) in zip(children, outputs, strict=True):
        failure = out.decode(errors="replace").strip()
        if child.returncode == _BROKEN:
            raise CausalityError(failure)
        if child.returncode != 0:
            raise RuntimeError(f"a client process failed: {failure or child.returncode}")
        report = json.loads(out)
        times.extend(report["times"])
        cpu += report["cpu"]
    return sessions / elapsed, times, cpu


async def child(url: str, sessions: int, client: str) -> int:
    """One client process of :func:`batch`: say ready, wait for go, print the durations
    and the CPU the sessions took."""
    exchange = load_exchange(CASSETTE)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    try:
        _, times, cpu = await batch(url, exchange, sessions, client=client)
    except CausalityError as exc:
        print(exc, flush=True)
        return _BROKEN
    except (OSError, RuntimeError, WebSocketException) as exc:
        print(f"{url}: {exc!r}", flush=True)
        return 1
    print(json.dumps({"times": times, "cpu": cpu}), flush=True)
    return 0


async def idle_memory(name: str, argv: Sequence[str], cwd: Path, workdir: Path, n: int) -> float:
    """RSS growth per open idle session (each got ``session.created`` and waits).

    Measured on a server process of its own, warmed with one session: in a process
    that already served a batch, the heap it kept would hide the growth.
    """
    exchange_log = workdir / f"{name}-memory.log"
    async with server_process(name, argv, exchange_log, cwd=cwd) as server:
        url = f"{server.url}/v1/realtime?model=bench"
        async with connect(url, additional_headers=AUTH, compression=None) as ws:
            await ws.recv()
        before = rss_bytes(server.pid)
        async with contextlib.AsyncExitStack() as stack:

            async def open_one() -> None:
                ws = await stack.enter_async_context(
                    connect(url, additional_headers=AUTH, compression=None, open_timeout=120)
                )
                await ws.recv()

            await asyncio.gather(*(open_one() for _ in range(n)))
            grown = rss_bytes(server.pid) - before
    return max(grown, 0) / n


async def run(args: argparse.Namespace) -> bool:
    from fakeupstream.storage.library import bundled_cassette_dir

    exchange = load_exchange(CASSETTE)
    raise_open_files_limit()
    backlog = str(max(args.sessions) + 100)
    results: dict[str, Any] = {
        "sessions": args.sessions,
        "rounds": args.rounds,
        "client": args.client,
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="concurrent-bench-") as tmp:
        workdir = Path(tmp)
        turns = str(write_bare_exchange(exchange, workdir / "turns.json"))
        anchor = bare_argv("--backlog", backlog, "exchange", turns)
        fake = fake_argv(bundled_cassette_dir(), CASSETTE, *args.fake_args)
        before = fake_argv(bundled_cassette_dir(), CASSETTE)
        async with contextlib.AsyncExitStack() as stack:
            started = await stack.enter_async_context(
                servers(workdir, anchor, fake, args.baseline, before)
            )
            if args.workers > 1:
                argv = [*fake, "--workers", str(args.workers)]
                log = workdir / "workers.log"
                name = f"fake-{args.workers}w"
                started.append(await stack.enter_async_context(server_process(name, argv, log)))
            if args.proxy:
                upstream = started[1].url.replace("ws://", "http://", 1)
                argv = ["-m", "proxy", "--port", "0", "--log-level", "warning"]
                argv += ["--upstream", upstream]
                started.append(
                    await stack.enter_async_context(
                        server_process("proxy", argv, workdir / "proxy.log")
                    )
                )
            ok = await measure(args, exchange, started, results)
        memory_argv = {"bare": anchor, "fake": fake}
        cwd = {"bare": ROOT, "fake": ROOT}
        if args.baseline is not None:
            memory_argv["baseline"], cwd["baseline"] = before, args.baseline
        n = max(args.sessions)
        memory = {
            name: await idle_memory(name, argv, cwd[name], workdir, n)
            for name, argv in memory_argv.items()
        }
    results["idle_bytes"] = memory
    print(f"memory per open idle session, {n} sessions, a fresh process each:")
    for name, value in memory.items():
        print(f"  {name:<8} {value / 1024:.1f} KB")
    ok = ok and memory["fake"] < MEMORY_TARGET
    print(
        f"  fake     target < {MEMORY_TARGET // 1024} KB: "
        f"{'PASS' if memory['fake'] < MEMORY_TARGET else 'FAIL'}"
    )
    write_results(args.json, "concurrent_sessions", results)
    return ok


def summarize(
    args: argparse.Namespace, sessions: int, runs: dict[str, dict[str, list[float]]]
) -> tuple[float, float]:
    """Print the medians of every server at N ``sessions`` and their ratios; return the
    two that have targets: fake/bare sessions/s and p99."""
    print(f"N={sessions} (medians of {args.rounds} rounds, all causal; ratios: the median of")
    print("  the rounds' own ratios, each round running every server once):")
    for name, run in runs.items():
        print(
            f"  {name:<8} {median(run['rate']):>6,.0f} sessions/s   p50 "
            f"{median(run['p50']):.3f}s   p99 {median(run['p99']):.3f}s   "
            f"CPU {median(run['cpu_ms']):.2f} ms/session "
            f"(client {median(run['client_cpu_ms']):.2f})"
        )
    rate_ratio = paired_ratio(runs["fake"]["rate"], runs["bare"]["rate"])
    p99_ratio = paired_ratio(runs["fake"]["p99"], runs["bare"]["p99"])
    print(f"  fake/bare sessions/s {verdict(rate_ratio, args.target_rate)}")
    print(f"  fake/bare p99        {verdict(p99_ratio, args.target_p99, higher=False)}")
    if "baseline" in runs:
        before_rate = paired_ratio(runs["baseline"]["rate"], runs["bare"]["rate"])
        before_p99 = paired_ratio(runs["baseline"]["p99"], runs["bare"]["p99"])
        print(f"  baseline/bare sessions/s {before_rate:.2f}, p99 {before_p99:.2f}")
    for name in runs:
        if name.startswith("fake-"):
            scaling = paired_ratio(runs[name]["rate"], runs["fake"]["rate"])
            print(f"  {name}/fake sessions/s {scaling:.2f} (1 to {args.workers} workers)")
    if "proxy" in runs:
        via = paired_ratio(runs["proxy"]["rate"], runs["fake"]["rate"])
        print(f"  proxy/direct sessions/s {via:.2f}")
    return rate_ratio, p99_ratio


async def measure(
    args: argparse.Namespace, exchange: Exchange, started: Sequence[Server], results: dict[str, Any]
) -> bool:
    urls = {server.name: f"{server.url}/v1/realtime?model=bench" for server in started}
    pids = {server.name: server.pid for server in started}
    for url in urls.values():  # warm-up
        await batch(url, exchange, min(*args.sessions, 100), args.clients, args.client)
    ok = True
    for sessions in args.sessions:
        runs: dict[str, dict[str, list[float]]] = {
            name: {"rate": [], "p50": [], "p99": [], "cpu_ms": [], "client_cpu_ms": []}
            for name in urls
        }
        for round_ in range(args.rounds):
            for name in rounds_order(list(urls), round_):
                before = cpu_seconds(pids[name])
                try:
                    rate, times, client_cpu = await batch(
                        urls[name], exchange, sessions, args.clients, args.client
                    )
                except CausalityError as exc:
                    raise CausalityError(f"{name}, N={sessions}: {exc}") from None
                except (OSError, RuntimeError, WebSocketException) as exc:
                    raise RuntimeError(f"{name}, N={sessions}: {exc!r}") from None
                used = cpu_seconds(pids[name]) - before
                run = runs[name]
                run["rate"].append(rate)
                run["p50"].append(percentile(times, 0.5))
                run["p99"].append(percentile(times, 0.99))
                run["cpu_ms"].append(used / sessions * 1e3)
                run["client_cpu_ms"].append(client_cpu / sessions * 1e3)
            line = "   ".join(
                f"{name} {runs[name]['rate'][-1]:>6,.0f}/s p99 {runs[name]['p99'][-1]:.2f}s"
                for name in urls
            )
            print(f"N={sessions} round {round_ + 1}: {line}", flush=True)
        rate_ratio, p99_ratio = summarize(args, sessions, runs)
        results["runs"][str(sessions)] = runs
        # After every N, so a failure at a larger N keeps what was measured.
        write_results(args.json, "concurrent_sessions", results)
        if sessions == min(max(args.sessions), 1000) or sessions == max(args.sessions):
            ok = ok and rate_ratio >= args.target_rate and p99_ratio <= args.target_p99
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/concurrent_sessions.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--sessions", type=int, nargs="+", default=[100, 1000, 2000], help="N, at once"
    )
    parser.add_argument("--rounds", type=int, default=5, help="measured batches per server")
    parser.add_argument("--proxy", action="store_true", help="also measure through the proxy")
    parser.add_argument(
        "--workers", type=int, default=1, help="also measure `serve --workers N` (N > 1)"
    )
    parser.add_argument(
        "--clients", type=int, default=1, help="client processes sharing each batch"
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="lean",
        help="the load client: lean (asyncio Protocols, the default) or websockets",
    )
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--target-rate", type=float, default=0.8, help="minimum sessions/s ratio")
    parser.add_argument("--target-p99", type=float, default=1.25, help="maximum p99 ratio")
    parser.add_argument(
        "--baseline", type=checkout, help="also measure fakeupstream from this checkout"
    )
    parser.add_argument("--json", type=Path, help="write the results here (for bench/chart.py)")
    parser.add_argument(
        "--fake-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="the rest goes to `fakeupstream serve` (e.g. --workers 2)",
    )
    args = parser.parse_args(argv)
    if args.child is not None:
        return asyncio.run(child(args.child, args.sessions[0], args.client))
    if min(args.sessions) < 1 or args.rounds < 1 or args.clients < 1:
        parser.error("--sessions and --rounds must be at least 1")
    try:
        ok = asyncio.run(run(args))
    except CausalityError as exc:
        print(f"concurrent_sessions: causal order broken: {exc}", file=sys.stderr)
        return 1
    except (RuntimeError, OSError, WebSocketException) as exc:
        print(f"concurrent_sessions: error: {exc!r}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
