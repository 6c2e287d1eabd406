"""Small helpers shared by the socket tests: raw HTTP, connecting, reading until a close."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

# One scaled timeout for anything a test waits on; generous, since nothing should get near it.
TIMEOUT = 5.0
AUTH = {"Authorization": "Bearer sk-test-fake-key"}


async def http(
    base: str,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """Send one HTTP/1.1 request to ``base`` (``http://host:port``); return status and JSON."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection(host, int(port))
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{extra}{length}\r\n"
        writer.write(head.encode() + body)
        raw = await reader.read()
        writer.close()
        await writer.wait_closed()
    header, _, payload = raw.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload


VOLATILE = frozenset({"event_id", "expires_at", "created_at"})
"""Fields that legitimately differ between a recording and its replay: event ids, times."""


def stable(value: Any) -> Any:
    """``value`` (events, at any depth) without the :data:`VOLATILE` fields."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


def ws_connect(url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> connect:
    """Open a client connection the way the GA SDK does (no compression, no size limit)."""
    return connect(
        url,
        additional_headers=headers if headers is not None else AUTH,
        open_timeout=TIMEOUT,
        max_size=None,
        compression=None,
        **kwargs,
    )


async def recv_event(ws: ClientConnection) -> dict[str, Any]:
    """The next event, parsed."""
    async with asyncio.timeout(TIMEOUT):
        message = await ws.recv()
    assert isinstance(message, str)
    event: dict[str, Any] = json.loads(message)
    return event


async def send_event(ws: ClientConnection, event: dict[str, Any]) -> None:
    await ws.send(json.dumps(event))


async def recv_until_closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int, str]:
    """Every event until the server closes; then the close code and reason."""
    events = []
    try:
        while True:
            events.append(await recv_event(ws))
    except ConnectionClosed as closed:
        received = closed.rcvd
    assert received is not None, "the connection ended without a close frame"
    return events, received.code, received.reason


async def start_serve(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``fakeupstream serve --port 0 ARGS`` as a process; return it and its ``ws://`` URL.

    The caller stops it (SIGTERM, then checks the exit status) and kills it if it must.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakeupstream",
        "serve",
        "--port",
        "0",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT * 6)).decode()
        assert line.startswith("listening on ws://127.0.0.1:"), line
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return process, line.split()[-1]


class SlowLoads:
    """Every cassette load waits, in its thread, until the test calls :meth:`release`.

    A load on the event loop would then stall everything else the test does; the
    test shows it does not by getting answers while loads wait.
    """

    def __init__(self, monkeypatch: Any) -> None:
        from fakeupstream.storage import library

        self._go = threading.Event()
        self._started = threading.Semaphore(0)
        self.waited: list[bool] = []  # one per load: False if it was never released
        real_load = library.load_cassette

        def slow_load(path: Any) -> Any:
            self._started.release()
            self.waited.append(self._go.wait(TIMEOUT))
            return real_load(path)

        monkeypatch.setattr(library, "load_cassette", slow_load)

    async def started(self, count: int = 1) -> None:
        """Wait until ``count`` loads are waiting."""
        for _ in range(count):
            assert await asyncio.to_thread(self._started.acquire, True, TIMEOUT)

    def release(self) -> None:
        self._go.set()
