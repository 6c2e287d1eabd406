"""Workers sharing one port: the admin API answers for all of them (real sockets, processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from fakeupstream.serve.workers import WorkerUpstream, parse_worker

from ..helpers import TIMEOUT, SlowLoads, http, recv_event, start_serve, ws_connect

pytestmark = pytest.mark.skipif(
    not hasattr(__import__("socket"), "SO_REUSEPORT"), reason="needs SO_REUSEPORT"
)


@pytest_asyncio.fixture
async def workers() -> AsyncIterator[list[WorkerUpstream]]:
    # A short directory: a Unix socket path is limited to ~100 bytes.
    with tempfile.TemporaryDirectory(prefix="fu-") as control:
        first = WorkerUpstream(cassette="session", index=0, count=2, control=Path(control))
        await first.start()
        second = WorkerUpstream(
            cassette="session", index=1, count=2, control=Path(control), port=first.port
        )
        await second.start()
        try:
            yield [first, second]
        finally:
            await second.stop()
            await first.stop()


async def connect_until_both_served(workers: list[WorkerUpstream]) -> int:
    """Open sessions until each worker has served one (the kernel picks); return how many."""
    opened = 0
    while not all(worker.reports() for worker in workers):
        async with ws_connect(f"{workers[0].url}/v1/realtime?model=m") as ws:
            await recv_event(ws)
        opened += 1
        assert opened < 200, "the kernel never spread the connections"
    for worker in workers:
        await asyncio.wait_for(worker.wait_idle(), TIMEOUT)
    return opened


@pytest.mark.asyncio
async def test_the_report_lists_every_workers_connections_once(
    workers: list[WorkerUpstream],
) -> None:
    opened = await connect_until_both_served(workers)
    status, body = await http(workers[0].http_url, "GET", "/__fakeupstream/report")
    assert status == 200
    ids = [connection["id"] for connection in body["connections"]]
    assert ids == sorted(ids) and len(set(ids)) == opened == len(ids)
    assert {i % 2 for i in ids} == {0, 1}  # worker 0 gives odd ids, worker 1 even ones


@pytest.mark.asyncio
async def test_selecting_a_cassette_and_reset_reach_every_worker(
    workers: list[WorkerUpstream],
) -> None:
    await connect_until_both_served(workers)
    target = "/__fakeupstream/cassette?name=text_response"
    assert await http(workers[0].http_url, "POST", target) == (200, {"cassette": "text_response"})
    assert [worker.current_cassette() for worker in workers] == ["text_response"] * 2
    status, body = await http(workers[0].http_url, "POST", "/__fakeupstream/cassette?name=nope")
    assert status == 404 and body["error"]["code"] == "unknown_cassette"
    assert [worker.current_cassette() for worker in workers] == ["text_response"] * 2
    assert await http(workers[0].http_url, "POST", "/__fakeupstream/reset") == (
        200,
        {"status": "reset"},
    )
    assert [worker.reports() for worker in workers] == [[], []]


@pytest.mark.asyncio
async def test_health_is_answered_while_every_worker_loads_a_cassette(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slow.yaml").write_text("version: 1\ntimeline: []\n")
    loads = SlowLoads(monkeypatch)
    with tempfile.TemporaryDirectory(prefix="fu-") as control:
        first = WorkerUpstream(tmp_path, index=0, count=2, control=Path(control))
        await first.start()
        second = WorkerUpstream(tmp_path, index=1, count=2, control=Path(control), port=first.port)
        await second.start()
        try:
            target = "/__fakeupstream/cassette?name=slow"
            select = asyncio.create_task(http(first.http_url, "POST", target))
            await loads.started(2)  # each worker loads it
            status, _ = await http(first.http_url, "GET", "/__fakeupstream/health")
            assert status == 200
            loads.release()
            assert await asyncio.wait_for(select, TIMEOUT) == (200, {"cassette": "slow"})
            assert [first.current_cassette(), second.current_cassette()] == ["slow", "slow"]
        finally:
            loads.release()
            await second.stop()
            await first.stop()


@pytest.mark.asyncio
async def test_a_worker_that_does_not_answer_is_a_502(workers: list[WorkerUpstream]) -> None:
    await workers[1].stop()  # its admin socket is gone; the port still has worker 0
    status, body = await http(workers[0].http_url, "POST", "/__fakeupstream/reset")
    assert status == 502
    assert body["error"]["code"] == "worker_unavailable"
    status, _ = await http(workers[0].http_url, "GET", "/__fakeupstream/health")
    assert status == 200  # answered by the worker that got it


def test_the_worker_argument_is_checked() -> None:
    assert parse_worker("1/2//tmp/x") == (1, 2, Path("/tmp/x"))
    for text in ("2/2//tmp/x", "0/1/relative", "a/b/c", "0"):
        with pytest.raises(ValueError):  # noqa: PT011 - int() and unpacking raise it too
            parse_worker(text)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.asyncio
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="lists children through /proc")
async def test_serve_with_two_workers_serves_one_port_and_stops_them_all_on_sigterm() -> None:
    process, url = await start_serve("--cassette", "session", "--workers", "2")
    try:
        workers = children(process.pid)
        assert len(workers) == 2
        for _ in range(4):
            async with ws_connect(f"{url}/v1/realtime?model=m") as ws:
                assert (await recv_event(ws))["type"] == "session.created"
        base = url.replace("ws://", "http://")
        status, body = await http(base, "GET", "/__fakeupstream/report")
        assert status == 200 and len(body["connections"]) == 4
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), TIMEOUT * 2) == 0
        assert not any(alive(pid) for pid in workers)
        assert process.stderr is not None
        assert b"Traceback" not in await process.stderr.read()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.asyncio
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="lists children through /proc")
async def test_when_a_worker_dies_the_others_stop_and_serve_exits_1() -> None:
    process, _ = await start_serve("--cassette", "session", "--workers", "2")
    try:
        killed, other = children(process.pid)
        os.kill(killed, signal.SIGKILL)
        assert await asyncio.wait_for(process.wait(), TIMEOUT * 2) == 1
        assert not alive(other)
        assert process.stderr is not None
        err = (await process.stderr.read()).decode()
        assert "exited with status -9; stopping the others" in err
        assert "Traceback" not in err
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("flag", ["--workers", "--backlog"])
def test_workers_and_backlog_take_a_positive_number(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fakeupstream.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["serve", flag, "0"])
    assert exited.value.code == 2
    assert f"argument {flag}: expected 1 or more, got 0" in capsys.readouterr().err


def test_two_workers_refuse_an_unknown_cassette_once(capsys: pytest.CaptureFixture[str]) -> None:
    from fakeupstream.cli import main

    assert main(["serve", "--port", "0", "--workers", "2", "--cassette", "nope"]) == 1
    assert capsys.readouterr().err.startswith("fakeupstream: error: no cassette named 'nope'")
