"""What the benchmark scripts share: server processes, CPU and memory readings, results.

Every script measures fakeupstream against an anchor started in the same run
(a bare ``websockets`` server, :mod:`bare_server`), each in its own process,
alternating which goes first in each round so warm-up and noise hit both
alike, and prints ratios. ``--baseline DIR`` adds a third server: fakeupstream
from another checkout (e.g. ``git archive main | tar -x -C DIR``), so a change
is measured before and after in one run. ``--json FILE`` writes the results
for :mod:`chart`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
START_TIMEOUT = 60.0
AUTH = {"Authorization": "Bearer sk-bench-not-a-key"}


@dataclass(frozen=True)
class Server:
    """A server process under test: its name, base URL and pid."""

    name: str
    url: str
    pid: int


def tail(log: Path) -> str:
    """The end of a server's log, to show why it did not start."""
    return log.read_text(errors="replace")[-2000:]


@contextlib.asynccontextmanager
async def server_process(
    name: str, argv: Sequence[str], log: Path, *, cwd: Path = ROOT
) -> AsyncIterator[Server]:
    """Start ``python ARGV...`` in ``cwd``; yield it once it prints ``listening on URL``."""
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            # The baseline checkout must import its own fakeupstream, not this one.
            env={**os.environ, "PYTHONPATH": os.fspath(cwd)},
        )
        try:
            assert process.stdout is not None
            async with asyncio.timeout(START_TIMEOUT):
                line = (await process.stdout.readline()).decode().strip()
            if not line.startswith("listening on "):
                raise RuntimeError(f"{name} did not start (got {line!r}):\n" + tail(log))
            yield Server(name, line.removeprefix("listening on "), process.pid)
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    async with asyncio.timeout(10):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()


def fake_argv(cassette_dir: Path, cassette: str, *extra: str) -> list[str]:
    """``python -m fakeupstream serve`` on a free port, replaying ``cassette`` at speed 0."""
    argv = ["-m", "fakeupstream", "serve", "--port", "0", "--cassette-dir", str(cassette_dir)]
    return [*argv, "--cassette", cassette, *extra]


def bare_argv(*args: str) -> list[str]:
    """The anchor: ``python bench/bare_server.py ARGS...``."""
    return [str(BENCH / "bare_server.py"), "--port", "0", *args]


@contextlib.asynccontextmanager
async def servers(
    workdir: Path,
    anchor: Sequence[str],
    fake: Sequence[str],
    baseline: Path | None,
    baseline_fake: Sequence[str] | None = None,
) -> AsyncIterator[list[Server]]:
    """The anchor, fakeupstream, and (with ``baseline``) fakeupstream from that checkout,
    started with ``baseline_fake`` if given (an older version may lack newer options)."""
    async with contextlib.AsyncExitStack() as stack:
        started = [
            await stack.enter_async_context(server_process("bare", anchor, workdir / "bare.log")),
            await stack.enter_async_context(server_process("fake", fake, workdir / "fake.log")),
        ]
        if baseline is not None:
            log = workdir / "baseline.log"
            started.append(
                await stack.enter_async_context(
                    server_process("baseline", baseline_fake or fake, log, cwd=baseline)
                )
            )
        yield started


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) used so far by ``pid`` and its live children (Linux, so
    ``serve --workers N`` counts its workers), or by this process."""
    if pid is None:
        return time.process_time()
    try:  # fields 14 and 15 of /proc/PID/stat, in clock ticks
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")
    return own + sum(cpu_seconds(child) for child in children(pid))


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux), else none."""
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except (OSError, ValueError):
        return []


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (Linux ``VmRSS``), 0 where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def rounds_order(names: Sequence[str], round_: int) -> list[str]:
    """The order to run ``names`` in this round: rotated, so none always goes first."""
    shift = round_ % len(names)
    return [*names[shift:], *names[:shift]]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of the round-by-round ratios ``numerators[i] / denominators[i]``.

    Two servers measured in the same round ran within a second of each other, under
    the same load from everything else on the machine; a round's ratio cancels that
    load, which moves single rounds by a factor of 2 on a shared VM.
    """
    return median([a / b for a, b in zip(numerators, denominators, strict=True)])


def spread(values: Sequence[float]) -> str:
    """``min-max`` of ``values`` for the report."""
    return f"{min(values):,.0f}-{max(values):,.0f}"


def machine() -> dict[str, Any]:
    """Where the numbers came from."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": [round(value, 2) for value in load],
    }


def checkout(text: str) -> Path:
    """A directory holding another version of fakeupstream (argparse type)."""
    path = Path(text).resolve()
    if not (path / "fakeupstream" / "__init__.py").is_file():
        raise argparse.ArgumentTypeError(f"{text}: no fakeupstream package in this directory")
    return path


def add_common_arguments(parser: argparse.ArgumentParser, rounds: int) -> None:
    parser.add_argument("--rounds", type=int, default=rounds, help="measured runs of each server")
    parser.add_argument(
        "--baseline",
        type=checkout,
        help="also measure fakeupstream from this checkout (before/after in one run)",
    )
    parser.add_argument("--json", type=Path, help="write the results here (for bench/chart.py)")


def write_results(path: Path | None, benchmark: str, results: dict[str, Any]) -> None:
    if path is None:
        return
    document = {"benchmark": benchmark, "machine": machine(), **results}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def verdict(ratio: float, target: float, *, higher: bool = True) -> str:
    ok = ratio >= target if higher else ratio <= target
    sign = ">=" if higher else "<="
    return f"{ratio:.2f} (target {sign} {target:.2f}): {'PASS' if ok else 'FAIL'}"


class CausalityError(RuntimeError):
    """A server broke the recorded order (a wrong event type, or an event sent ahead)."""


@dataclass(frozen=True)
class Exchange:
    """A recorded exchange as clients play it and as the bare server plays it.

    Attributes:
        turns: ``(client frame or None, [server event types])``: the first turn's
            server events come on connect, each later turn's after its client frame.
        bare: the same turns with the server frames pre-encoded (``bare_server.py
            exchange``'s file).
    """

    turns: list[tuple[str | None, list[str]]]
    bare: list[tuple[str | None, list[str]]]


def load_exchange(cassette: str) -> Exchange:
    """Turn a bundled cassette's timeline into an :class:`Exchange`."""
    from fakeupstream.cassette import Direction, FrameStep, encode_event
    from fakeupstream.storage.library import CassetteLibrary

    timeline = CassetteLibrary().load(cassette).timeline
    turns: list[tuple[str | None, list[str]]] = [(None, [])]
    bare: list[tuple[str | None, list[str]]] = [(None, [])]
    for step in timeline:
        if not isinstance(step, FrameStep) or not isinstance(step.data, dict):
            raise RuntimeError(f"{cassette}: only JSON events are supported here")
        if step.direction is Direction.CLIENT:
            turns.append((encode_event(step.data), []))
            bare.append((encode_event(step.data), []))
        else:
            turns[-1][1].append(str(step.data["type"]))
            bare[-1][1].append(encode_event(step.data))
    return Exchange(turns, bare)


def write_bare_exchange(exchange: Exchange, path: Path) -> Path:
    path.write_text(json.dumps(exchange.bare), encoding="utf-8")
    return path


def raise_open_files_limit() -> int:
    """Raise this process's open-file limit to the hard limit (servers inherit it)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
