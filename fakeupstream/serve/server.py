"""The fake upstream on a real socket: a thin asyncio layer around the sans-I/O core.

The :class:`~fakeupstream.planning.ConnectionPlanner` decides what each upgrade
request gets (refused, replayed, or recorded), the replay engine decides what to
send and when, and the admin handler answers admin requests; this module only
executes those decisions on sockets. The port is served by
:func:`websockets.asyncio.server.serve` with the connection class from
:mod:`.front_door`, so admin requests (any method) and WebSockets share it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import http
import logging
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from types import TracebackType

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from ..access import AccessPolicy
from ..admin import handle_admin
from ..exceptions import CassetteError, CassetteNotFound
from ..ids import IdRewriter
from ..planning import ConnectionPlanner, RecordPlan, Refused, ReplayPlan
from ..recordmode import RecordPolicy
from ..replay import Close, ReplayOptions, ReplaySession
from ..report import ConnectionReport
from ..responses import HttpResponse, error_response, reason_phrase
from ..storage.file_writer import CassetteWriter
from ..storage.library import CassetteLibrary
from .front_door import front_door
from .logs import RedactSecrets
from .record_relay import RecordingConfig, RecordRelay

__all__ = ["MAX_REPORTS", "FakeUpstream"]

logger = logging.getLogger("fakeupstream")
# A library logs only when the application configures logging (the CLI does with -v);
# without this, Python's last-resort handler would print websockets' handshake tracebacks.
logger.addHandler(logging.NullHandler())
# websockets logs every header at debug level through this logger: never show a key.
logger.addFilter(RedactSecrets())

MAX_REPORTS = 10_000
"""How many connection reports a server keeps (the oldest are dropped first)."""
_OPEN_TIMEOUT = 10.0
# The GA API takes events up to 15 MiB (audio); leave room for the JSON around them.
_MAX_MESSAGE = 32 * 1024 * 1024


class FakeUpstream:
    """A fake OpenAI realtime server replaying cassettes on a loopback port.

    Use it as an async context manager::

        async with FakeUpstream(cassette="session") as fake:
            connect(f"{fake.url}/v1/realtime?model=gpt-realtime", ...)

    Args:
        cassette_dir: where the cassettes are; the bundled ones by default.
        cassette: the default cassette for connections that do not name one.
        replay: how cassettes are replayed (speed, matcher, fresh ids).
        recording: record instead of replaying the cassettes its mode says
            (see :mod:`fakeupstream.recordmode`); a cassette to be recorded need
            not exist yet.
        host: the address to bind; loopback by default.
        port: the port; 0 picks a free one.
        access: who may connect: by default, clients without an ``Origin`` and pages
            served from loopback; see :class:`~fakeupstream.access.AccessPolicy`
            (``allow_origins``, and ``client_token`` for the recorder).
    """

    def __init__(
        self,
        cassette_dir: Path | str | None = None,
        cassette: str | None = None,
        *,
        replay: ReplayOptions | None = None,
        recording: RecordingConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        access: AccessPolicy | None = None,
    ) -> None:
        self.library = CassetteLibrary(cassette_dir)
        self.options = replay if replay is not None else ReplayOptions()
        self.errors: list[BaseException] = []
        """Unexpected exceptions raised while serving (bugs, not bad input), and
        recordings that could not be saved."""
        policy = None if recording is None else RecordPolicy(recording.mode, self.library.exists)
        self._planner = ConnectionPlanner(
            self.library, None if policy is None else policy.records, access
        )
        self._relay: RecordRelay | None = None
        if recording is not None and policy is not None:
            writer = CassetteWriter(
                self.library.directory, sidecar_threshold=recording.sidecar_threshold
            )
            self._relay = RecordRelay(
                recording, writer, policy, self.errors, enter=self._enter, leave=self._leave
            )
        if cassette is not None and not self.records(cassette):
            self.library.load(cassette)  # fail now, not on the first connection
        self.host = host
        self.port = port
        self._requested_port = port
        self._default = cassette
        self._current = cassette
        # Bounded, so a long-running `fakeupstream serve` does not grow without end.
        self._reports: collections.deque[ConnectionReport] = collections.deque(maxlen=MAX_REPORTS)
        self._plans: dict[ServerConnection, ReplayPlan] = {}
        self._reapers: set[asyncio.Task[None]] = set()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._server: Server | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        self._server = await serve(
            self._handle,
            self.host,
            self._requested_port,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=_select_subprotocol,
            server_header=None,
            # The handshake includes the upstream's when recording: leave it room.
            open_timeout=_OPEN_TIMEOUT + (self._relay.config.connect_timeout if self._relay else 0),
            max_size=_MAX_MESSAGE,
            max_queue=64,
            logger=logger,
            create_connection=front_door(self._admin, self._screen_admin),
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        logger.info("listening on %s (cassettes in %s)", self.url, self.library.directory)

    async def stop(self) -> None:
        """Close every connection (code 1001) and release the port."""
        if self._server is None:
            return
        server, self._server = self._server, None
        if self._relay is not None:
            self._relay.cancel_connecting()
        server.close()
        await server.wait_closed()
        if self._reapers:  # every connection is closed now, so they are all finishing
            await asyncio.gather(*self._reapers, return_exceptions=True)
        if self._relay is not None:
            await self._relay.aclose()

    async def __aenter__(self) -> FakeUpstream:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- what users call ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``ws://HOST:PORT``: append ``/v1/realtime?model=...``."""
        return f"ws://{_netloc(self.host, self.port)}"

    @property
    def http_url(self) -> str:
        """``http://HOST:PORT``: the base URL a gateway or SDK is configured with."""
        return f"http://{_netloc(self.host, self.port)}"

    def cassette_url(self, name: str) -> str:
        """The base URL that selects cassette ``name`` by path prefix."""
        self.library.path_for(name)  # validates the name
        return f"{self.http_url}/cassettes/{name}"

    def current_cassette(self) -> str | None:
        """The cassette for connections that do not name one."""
        return self._current

    def use(self, name: str | None) -> None:
        """Set the cassette for the next connections (``None``: back to the default).

        Raises:
            CassetteNotFound: no such cassette.
            CassetteError: the cassette is malformed.
        """
        if name is not None and not self.records(name):
            self.library.load(name)
        self._current = name if name is not None else self._default

    def records(self, name: str) -> bool:
        """Tell whether connections to cassette ``name`` are recorded (else replayed)."""
        return self._planner.records(name)

    def reports(self) -> list[ConnectionReport]:
        """One report per connection so far, oldest first (the last ``MAX_REPORTS``)."""
        return list(self._reports)

    def reset(self) -> None:
        """Forget the reports and errors, and start every cassette at its first episode."""
        self._reports.clear()
        self._planner.reset()
        self.errors.clear()

    def cassettes(self) -> list[tuple[str, str]]:
        """``(name, description)`` of every cassette, unreadable ones described as such."""
        listing = []
        for name in self.library.names():
            try:
                listing.append((name, self.library.load(name).description))
            except CassetteError as exc:
                listing.append((name, f"<invalid: {exc.public()}>"))
        return listing

    @property
    def recording(self) -> RecordingConfig | None:
        """How this server records, or ``None`` when it only replays."""
        return None if self._relay is None else self._relay.config

    async def wait_idle(self) -> None:
        """Wait until no connection is being served (bound it with ``asyncio.timeout``)."""
        await self._idle.wait()

    # -- the handshake: execute the plan --------------------------------------------------

    def _admin(self, method: str, target: str) -> HttpResponse:
        try:
            return handle_admin(method, target, self)
        except Exception as exc:  # a bug: report it, answer like a server would
            logger.exception("admin request %s failed", method)
            self.errors.append(exc)
            return error_response(500, f"fakeupstream internal error: {exc!r}", "internal_error")

    def _screen_admin(self, target: str, headers: list[tuple[str, str]]) -> HttpResponse | None:
        refused = self._planner.access.check_admin(headers)
        if refused is not None:
            plan = self._planner.refuse_admin(target, refused, "admin request not allowed")
            assert plan.report is not None
            self._reports.append(plan.report)
            return refused
        return None

    def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | Awaitable[Response | None] | None:
        name = self._planner.cassette_for(request.path, selected=self._current)
        if name is None:
            return self._execute(connection, request)
        return self._load_then_execute(connection, request, name)

    async def _load_then_execute(
        self, connection: ServerConnection, request: Request, name: str
    ) -> Response | None:
        # Parsing is CPU-bound and a file may be large (or an alias bomb, refused by the
        # reader's limits): do it off the event loop, so health checks and every other
        # session go on meanwhile. The planner then finds the cassette cached; an error
        # is the planner's to report, so it is dropped here.
        with contextlib.suppress(CassetteError, CassetteNotFound):
            await asyncio.to_thread(self.library.load, name)
        answer = self._execute(connection, request)
        return await answer if isinstance(answer, Awaitable) else answer

    def _execute(
        self, connection: ServerConnection, request: Request
    ) -> Response | Awaitable[Response | None] | None:
        plan = self._planner.plan(
            request.path,
            list(request.headers.raw_items()),
            _offered_subprotocols(request.headers),
            selected=self._current,
        )
        if plan.report is not None:
            self._reports.append(plan.report)
        if isinstance(plan, Refused):
            return _to_websockets(plan.response)
        if isinstance(plan, RecordPlan):
            assert self._relay is not None
            return self._open_relay(connection, plan)
        self._plans[connection] = plan
        self._enter()
        # If the connection dies between the 101 and the handler, websockets never calls
        # the handler: this reaper releases the plan so wait_idle() does not hang.
        reaper = asyncio.get_running_loop().create_task(self._reap_unhandled(connection))
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)
        return None

    async def _open_relay(self, connection: ServerConnection, plan: RecordPlan) -> Response | None:
        assert self._relay is not None
        refusal = await self._relay.open(connection, plan)
        return None if refusal is None else _to_websockets(refusal)

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        if response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
            return
        plan = self._plans.pop(connection, None)
        if plan is not None:  # websockets refused the upgrade itself (e.g. not a WebSocket)
            plan.report.refuse(f"HTTP {response.status_code}")
            self._leave()

    async def _reap_unhandled(self, connection: ServerConnection) -> None:
        await connection.wait_closed()
        plan = self._plans.pop(connection, None)
        if plan is not None:
            plan.report.refuse("the connection ended during the handshake")
            self._leave()

    # -- the session ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        if self._relay is not None and self._relay.owns(ws):
            await self._relay.serve(ws)
            return
        plan = self._plans.pop(ws, None)
        if plan is None:  # pragma: no cover - process_request always leaves a plan
            await ws.close(1011, "fakeupstream: no plan for this connection")
            return
        session = self._session(plan)
        report = plan.report
        logger.debug("connection %d: %s, cassette %r", report.id, report.path, report.cassette)
        try:
            await _replay(ws, session, asyncio.get_running_loop())
        except ConnectionClosed:
            pass
        except Exception as exc:  # a bug: report it, never leave the client hanging
            logger.exception("connection %d failed", report.id)
            self.errors.append(exc)
            report.protocol_errors.append(f"internal error: {exc!r}")
            with contextlib.suppress(Exception):
                await ws.close(1011, "fakeupstream internal error")
        finally:
            if not report.finished:
                by = "server" if session.closed else "client"
                received = ws.protocol.close_rcvd if by == "client" else ws.protocol.close_sent
                session.finish(
                    None if received is None else received.code,
                    None if received is None else received.reason,
                    by=by,
                )
            self._leave()

    def _session(self, plan: ReplayPlan) -> ReplaySession:
        """The replay engine for a planned connection, starting now."""
        recorded_at = plan.cassette.recorded.at
        shift = 0 if recorded_at is None else round(time.time() - recorded_at.timestamp())
        return ReplaySession(
            plan.steps,
            plan.report,
            start=asyncio.get_running_loop().time(),
            speed=self.options.speed,
            default_match=self.options.match or plan.cassette.match,
            time_shift=shift,
            ids=plan.ids,
            cassette=plan.cassette.name,
            fresh_ids=IdRewriter(str(plan.report.id)) if self.options.fresh_ids else None,
        )

    def _enter(self) -> None:
        self._busy += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()


async def _replay(
    ws: ServerConnection, session: ReplaySession, loop: asyncio.AbstractEventLoop
) -> None:
    """Drive the replay engine: send what is due, wait for the client or the next deadline."""
    while True:
        for action in session.due(loop.time()):
            if isinstance(action, Close):
                await ws.close(action.code, action.reason)
                session.finish(action.code, action.reason, by="server")
                return
            await ws.send(action.data)
        deadline = session.deadline()
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            async with asyncio.timeout(timeout):
                message = await ws.recv()
        except TimeoutError:
            continue
        session.receive(message, loop.time())


def _offered_subprotocols(headers: Headers) -> list[str]:
    return [
        item.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for item in value.split(",")
        if item.strip()
    ]


def _select_subprotocol(
    connection: ServerConnection, subprotocols: Sequence[Subprotocol]
) -> Subprotocol | None:
    # Browsers offer ["realtime", "openai-insecure-api-key.<key>"] and fail unless the
    # server selects one; the GA API selects "realtime".
    return Subprotocol("realtime") if "realtime" in subprotocols else None


def _to_websockets(response: HttpResponse) -> Response:
    """The ``websockets`` form of a sans-I/O response (``Connection: close`` added)."""
    headers = Headers(list(response.headers))
    headers["Content-Length"] = str(len(response.body))
    headers["Connection"] = "close"
    return Response(response.status, reason_phrase(response.status), headers, response.body)


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
