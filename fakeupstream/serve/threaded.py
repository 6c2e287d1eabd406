"""Run a :class:`~fakeupstream.serve.server.FakeUpstream` on its own thread and event loop.

Sync code, test fixtures and tests that call ``asyncio.run`` themselves all need
a server that does not live on *their* loop. Every method here is thread-safe:
it hands the work to the server's loop and waits for the answer.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ..faults import Fault
from ..report import ConnectionReport
from ..rules import Rule
from .record_relay import RecordingConfig
from .server import FakeUpstream

__all__ = ["ThreadedFakeUpstream"]

_T = TypeVar("_T")
_CALL_TIMEOUT = 10.0


class ThreadedFakeUpstream:
    """A fake upstream served from a background thread.

    Build the :class:`~fakeupstream.serve.server.FakeUpstream` as usual (its constructor
    needs no running loop), hand it over, then use this as a context manager
    (``with ThreadedFakeUpstream(FakeUpstream(cassette="session")) as fake: ...``) or
    call :meth:`start` and :meth:`stop`. Without a server, it runs one with the
    bundled cassettes.
    """

    def __init__(self, server: FakeUpstream | None = None) -> None:
        self._server = server if server is not None else FakeUpstream()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def server(self) -> FakeUpstream:
        """The server itself (only touch it from its own loop)."""
        return self._server

    def start(self) -> None:
        """Start the thread and wait until the port is bound.

        Raises:
            OSError: the address cannot be bound.
        """
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        loop = asyncio.new_event_loop()
        started: asyncio.Future[None] = loop.create_future()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._serve(started))
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fakeupstream", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(_wait(started), loop).result(_CALL_TIMEOUT)
        except BaseException:
            self._join()
            raise

    async def _serve(self, started: asyncio.Future[None]) -> None:
        self._stopping = asyncio.Event()
        try:
            await self._server.start()
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        try:
            await self._stopping.wait()
        finally:
            await self._server.stop()

    def stop(self) -> None:
        """Stop the server (closing its connections) and join the thread."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._join()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join(_CALL_TIMEOUT)
        self._thread = None
        self._loop = None

    def __enter__(self) -> ThreadedFakeUpstream:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- thread-safe access ---------------------------------------------------------------

    def _call(self, function: Callable[[], _T]) -> _T:
        async def run() -> _T:
            return function()

        return self._run(run())

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the server is not running: call start() first")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(_CALL_TIMEOUT)

    @property
    def url(self) -> str:
        """``ws://HOST:PORT`` (``wss://`` with TLS)."""
        return self._server.url

    @property
    def http_url(self) -> str:
        """``http://HOST:PORT`` (``https://`` with TLS)."""
        return self._server.http_url

    @property
    def ca_certificate(self) -> Path | None:
        """The CA file clients must trust when serving TLS with the local CA."""
        return self._server.ca_certificate

    @property
    def port(self) -> int:
        """The bound port."""
        return self._server.port

    def cassette_url(self, name: str) -> str:
        """The base URL that selects cassette ``name`` by path prefix."""
        return self._server.cassette_url(name)

    def use(self, name: str | None) -> None:
        """Set the cassette for the next connections (see :meth:`FakeUpstream.use`)."""
        self._call(lambda: self._server.use(name))

    @property
    def recording(self) -> RecordingConfig | None:
        """How the server records, or ``None`` when it only replays."""
        return self._server.recording

    def current_cassette(self) -> str | None:
        """The cassette for connections that do not name one."""
        return self._call(self._server.current_cassette)

    def reports(self) -> list[ConnectionReport]:
        """Copies of the connection reports, taken on the server's loop."""
        return self._call(lambda: copy.deepcopy(self._server.reports()))

    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised while serving."""
        return self._call(lambda: list(self._server.errors))

    def on(self, event: str, **reply: Any) -> Rule:
        """Add a rule for the next connections: see :meth:`FakeUpstream.on`."""
        return self._call(lambda: self._server.on(event, **reply))

    def reset(self) -> None:
        """Forget the reports and errors, and disarm the faults."""
        self._call(self._server.reset)

    def fault(self, kind: str, *, count: int = 1, **params: object) -> Fault:
        """Arm a fault for the next ``count`` connections (see :meth:`FakeUpstream.fault`)."""
        return self._call(lambda: self._server.fault(kind, count=count, **params))

    def armed_faults(self) -> list[tuple[Fault, int]]:
        """``(fault, connections left)`` for every armed fault."""
        return self._call(self._server.faults.armed)

    def disarm_faults(self) -> int:
        """Disarm every fault; return how many were armed."""
        return self._call(self._server.faults.disarm)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no connection is being served; ``False`` if ``timeout`` passed first."""

        async def wait() -> bool:
            try:
                async with asyncio.timeout(timeout):
                    await self._server.wait_idle()
            except TimeoutError:
                return False
            return True

        return self._run(wait())


async def _wait(future: asyncio.Future[None]) -> None:
    await future
