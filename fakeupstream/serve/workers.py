"""Several processes serving one port: ``fakeupstream serve --workers N``.

One Python process runs on one core. To use more, the supervisor (the
``fakeupstream serve`` process) starts N worker processes that all listen on the
same port with ``SO_REUSEPORT``; the kernel spreads the incoming connections
over them (Linux hashes each connection to one listener; some BSDs and macOS
accept the option but send every connection to one process). Platforms
without ``SO_REUSEPORT`` (Windows) refuse ``--workers`` above 1.

Each worker is a :class:`WorkerUpstream`: a :class:`~.server.FakeUpstream` that
also answers admin requests on a Unix socket of its own, in a directory the
supervisor made. An admin request on the shared port reaches one worker; if it
changes or reads per-worker state (:mod:`fakeupstream.cluster` says which), that
worker asks every worker, itself included, over their Unix sockets, and
answers with the merged result. So the selected cassette and ``reset`` reach
every worker and ``/report`` lists every worker's connections.

What stays per worker: the episode counter of each cassette (the n-th
connection *to a worker* replays the n-th episode), and the bound on kept
reports (``MAX_REPORTS`` each).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..cluster import fans_out, merge_answers, worker_ids
from ..exceptions import FakeUpstreamError
from ..planning import ConnectionPlanner
from ..responses import HttpResponse, error_response
from .server import FakeUpstream

__all__ = ["PEER_TIMEOUT", "WorkerUpstream", "parse_worker", "run_workers", "worker_socket"]

PEER_TIMEOUT = 10.0
"""Seconds a worker waits for the others to answer an admin request."""
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0


def worker_socket(control: Path, index: int) -> Path:
    """Where worker ``index`` answers the other workers' admin requests."""
    return control / f"worker-{index}.sock"


def parse_worker(text: str) -> tuple[int, int, Path]:
    """Parse the supervisor's ``INDEX/COUNT/CONTROL_DIR`` for one worker.

    Raises:
        ValueError: ``text`` is not of that form.
    """
    index, count, control = text.split("/", 2)
    if not 0 <= int(index) < int(count) or not Path(control).is_absolute():
        raise ValueError(f"not INDEX/COUNT/CONTROL_DIR: {text!r}")
    return int(index), int(count), Path(control)


class WorkerUpstream(FakeUpstream):
    """One worker of ``serve --workers N`` (see the module docstring).

    Args:
        index: this worker's number, from 0.
        count: how many workers share the port.
        control: the directory holding every worker's admin socket.
        args, kwargs: as for :class:`FakeUpstream` (``reuse_port`` is set).
    """

    def __init__(self, *args: Any, index: int, count: int, control: Path, **kwargs: Any) -> None:
        super().__init__(*args, reuse_port=True, **kwargs)
        # Connection ids are unique across workers, so merged reports never clash.
        self._planner = ConnectionPlanner(
            self.library, access=self._planner.access, ids=worker_ids(index, count)
        )
        self.index = index
        self._peers = [worker_socket(control, number) for number in range(count)]
        self._peer_server: asyncio.Server | None = None

    async def start(self) -> None:
        await super().start()
        self._peer_server = await asyncio.start_unix_server(
            self._answer_peer, path=self._peers[self.index]
        )

    async def stop(self) -> None:
        if self._peer_server is not None:
            self._peer_server.close()
            await self._peer_server.wait_closed()
            self._peer_server = None
        await super().stop()

    def _admin(self, method: str, target: str) -> HttpResponse | Awaitable[HttpResponse]:
        if not fans_out(method, target):
            return super()._admin(method, target)
        return self._ask_every_worker(method, target)

    async def _ask_every_worker(self, method: str, target: str) -> HttpResponse:
        try:
            async with asyncio.timeout(PEER_TIMEOUT):
                answers = await asyncio.gather(
                    *(_ask(peer, method, target) for peer in self._peers)
                )
        except (OSError, TimeoutError, ValueError) as exc:
            message = f"not every worker answered {method} {target}: {exc!r}"
            return error_response(502, message, "worker_unavailable")
        return merge_answers(method, target, answers)

    async def _answer_peer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer one admin request from a worker about this worker alone."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            answer = super()._admin(method, target)  # this worker's; it loads off the loop
            if not isinstance(answer, HttpResponse):
                answer = await answer
            writer.write(answer.encode())
            await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass  # the asking worker gave up; it reports that itself
        finally:
            writer.close()


async def _ask(peer: Path, method: str, target: str) -> HttpResponse:
    """Send one admin request to the worker at ``peer``; return its answer.

    Raises:
        OSError: the worker cannot be reached.
        ValueError: its answer is not an HTTP response.
    """
    reader, writer = await asyncio.open_unix_connection(peer)
    try:
        writer.write(f"{method} {target} HTTP/1.1\r\nHost: worker\r\n\r\n".encode("latin-1"))
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        raise ValueError(f"{peer.name}: not an HTTP response")
    status = int(head.split(b" ", 2)[1])
    headers = tuple(
        (name.strip(), value.strip())
        for line in head.decode("latin-1").split("\r\n")[1:]
        for name, _, value in [line.partition(":")]
        if name.lower() not in ("content-length", "connection")
    )
    return HttpResponse(status, body, headers)


def run_workers(
    command: Sequence[str], count: int, host: str, port: int, ready: Callable[[str], None]
) -> int:
    """Run ``count`` workers on ``host:port`` until SIGINT or SIGTERM; return the exit status.

    Args:
        command: the worker command line, without ``--port`` and ``--worker``.
        count: how many workers (two or more).
        host: the address every worker binds.
        port: the port; 0 picks a free one.
        ready: called with the ``ws://`` URL once every worker listens.

    Raises:
        FakeUpstreamError: the platform has no ``SO_REUSEPORT``, the port cannot be
            bound, or a worker did not start.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise FakeUpstreamError(
            "--workers needs SO_REUSEPORT, which this platform does not have: "
            "run one fakeupstream per port instead"
        )
    # The port is held (bound, not listening: it takes no connections) while the workers
    # start, so --port 0 gives them all the same free port.
    with (
        tempfile.TemporaryDirectory(prefix="fakeupstream-") as control,
        _reserve(host, port) as reserved,
    ):
        port = reserved.getsockname()[1]
        return asyncio.run(_supervise(command, count, port, Path(control), host, ready))


@contextlib.contextmanager
def _reserve(host: str, port: int) -> Iterator[socket.socket]:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise FakeUpstreamError(f"cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise FakeUpstreamError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        yield sock
    finally:
        sock.close()


async def _supervise(
    command: Sequence[str],
    count: int,
    port: int,
    control: Path,
    host: str,
    ready: Callable[[str], None],
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    workers: list[asyncio.subprocess.Process] = []
    try:
        for index in range(count):
            workers.append(
                await asyncio.create_subprocess_exec(
                    *command,
                    "--port",
                    str(port),
                    "--worker",
                    f"{index}/{count}/{control}",
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        for index, worker in enumerate(workers):
            assert worker.stdout is not None
            try:
                async with asyncio.timeout(_START_TIMEOUT):
                    line = (await worker.stdout.readline()).decode(errors="replace").strip()
            except TimeoutError:
                line = ""
            if not line.startswith("listening on "):
                raise FakeUpstreamError(f"worker {index} did not start (see the errors above)")
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        ready(f"ws://{netloc}")
        waiting = [asyncio.ensure_future(worker.wait()) for worker in workers]
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([stopping, *waiting], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if stopping in done:
            return 0
        died = next(i for i, task in enumerate(waiting) if task in done)
        print(
            f"fakeupstream: error: worker {died} exited with status {workers[died].returncode}; "
            "stopping the others",
            file=sys.stderr,
            flush=True,
        )
        return 1
    finally:
        await _stop(workers)


async def _stop(workers: Sequence[asyncio.subprocess.Process]) -> None:
    for worker in workers:
        if worker.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.terminate()
    for worker in workers:
        try:
            async with asyncio.timeout(_STOP_TIMEOUT):
                await worker.wait()
        except TimeoutError:
            worker.kill()
            await worker.wait()
