"""The fake upstream on a real socket: a thin asyncio layer around the replay engine.

One port serves both faces of the fake. A small front door reads each HTTP
request head: admin requests (``/__fakeupstream/...``, any method) are answered
right there, everything else is handed to a ``websockets`` server connection,
following the pattern :meth:`websockets.asyncio.server.Server.wrap` documents.
(``websockets`` itself only parses ``GET`` requests, and the admin API takes a
``POST``.) The handshake decision and the replay itself are sans-I/O
(:mod:`.handshake`, :mod:`.replay`); this module only moves bytes and time.
With a :class:`~fakeupstream.serve.record_relay.RecordingConfig`, the connections whose
cassette is to be recorded are handed to :mod:`.recorder` instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import http
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from ..admin import ADMIN_PREFIX, HttpResponse, handle_admin, json_response
from ..cassette import Cassette, MatchMode, Step
from ..exceptions import CassetteError, CassetteNotFound
from ..ga import EventIds
from ..handshake import Answer, Refuse, UpgradeRequest, decide, route
from ..ids import IdRewriter
from ..redaction import redact_target
from ..replay import Close, ReplaySession
from ..report import ConnectionReport, Mismatch
from ..storage.library import CassetteLibrary
from .logs import RedactSecrets
from .record_relay import Recorder, RecordingConfig

__all__ = ["FakeUpstream"]

logger = logging.getLogger("fakeupstream")
# A library logs only when the application configures logging (the CLI does with -v);
# without this, Python's last-resort handler would print websockets' handshake tracebacks.
logger.addHandler(logging.NullHandler())
# websockets logs every header at debug level through this logger: never show a key.
logger.addFilter(RedactSecrets())

MAX_REPORTS = 10_000
"""How many connection reports a server keeps (the oldest are dropped first)."""
_MAX_HEAD = 64 * 1024
_HEAD_TIMEOUT = 10.0
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
        speed: recorded delays are multiplied by this (0: none, 1: real time).
        host: the address to bind; loopback by default.
        port: the port; 0 picks a free one.
        match: overrides every cassette's default matcher when given.
        recording: record instead of replaying the cassettes its mode says
            (see :mod:`fakeupstream.recordmode`); a cassette to be recorded need
            not exist yet.
        fresh_ids: replace recorded ids by fresh ones per connection (see :mod:`.ids`).
    """

    def __init__(
        self,
        cassette_dir: Path | str | None = None,
        cassette: str | None = None,
        *,
        speed: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        match: MatchMode | None = None,
        recording: RecordingConfig | None = None,
        fresh_ids: bool = False,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be zero or more, got {speed}")
        self.library = CassetteLibrary(cassette_dir)
        self.errors: list[BaseException] = []
        """Unexpected exceptions raised while serving (bugs, not bad input), and
        recordings that could not be saved."""
        self._recorder: Recorder | None = None
        if recording is not None:
            self._recorder = Recorder(
                recording, self.library, self.errors, enter=self._enter, leave=self._leave
            )
        if cassette is not None and not self._records(cassette):
            self.library.load(cassette)  # fail now, not on the first connection
        self.speed = speed
        self.fresh_ids = fresh_ids
        self.match = match
        self.host = host
        self._requested_port = port
        self._default = cassette
        self._current = cassette
        self._ids = itertools.count(1)
        # Bounded, so a long-running `fakeupstream serve` does not grow without end.
        self._reports: collections.deque[ConnectionReport] = collections.deque(maxlen=MAX_REPORTS)
        self._connections_by_cassette: dict[str, int] = {}
        self._plans: dict[ServerConnection, _Plan] = {}
        self._reapers: set[asyncio.Task[None]] = set()
        self._front_doors: set[_FrontDoor] = set()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._server: Server | None = None
        self._listener: asyncio.Server | None = None
        self.port = port

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port and start accepting connections."""
        if self._listener is not None:
            raise RuntimeError("the server is already started")
        self._server = Server(
            self._handle,
            process_request=self._process_request,
            process_response=self._process_response,
            server_header=None,
            # The handshake includes the upstream's when recording: leave it room.
            open_timeout=_HEAD_TIMEOUT
            + (self._recorder.config.connect_timeout if self._recorder else 0),
            logger=logger,
        )
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            lambda: _FrontDoor(self), self.host, self._requested_port
        )
        self._server.wrap(self._listener)
        self.port = self._listener.sockets[0].getsockname()[1]
        logger.info("listening on %s (cassettes in %s)", self.url, self.library.directory)

    async def stop(self) -> None:
        """Close every connection (code 1001) and release the port."""
        if self._server is None:
            return
        server, self._server, self._listener = self._server, None, None
        for door in list(self._front_doors):
            door.abort()
        if self._recorder is not None:
            self._recorder.cancel_connecting()
        server.close()
        await server.wait_closed()
        if self._reapers:  # every connection is closed now, so they are all finishing
            await asyncio.gather(*self._reapers, return_exceptions=True)
        if self._recorder is not None:
            await self._recorder.aclose()

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
        if name is not None and not self._records(name):
            self.library.load(name)
        self._current = name if name is not None else self._default

    def reports(self) -> list[ConnectionReport]:
        """One report per connection so far, oldest first (the last ``MAX_REPORTS``)."""
        return list(self._reports)

    def reset(self) -> None:
        """Forget the reports and errors, and start every cassette at its first episode."""
        self._reports.clear()
        self._connections_by_cassette.clear()
        self.errors.clear()

    def cassettes(self) -> list[tuple[str, str]]:
        """``(name, description)`` of every cassette, unreadable ones described as such."""
        listing = []
        for name in self.library.names():
            try:
                listing.append((name, self.library.load(name).description))
            except CassetteError as exc:
                listing.append((name, f"<invalid: {exc}>"))
        return listing

    @property
    def recording(self) -> RecordingConfig | None:
        """How this server records, or ``None`` when it only replays."""
        return None if self._recorder is None else self._recorder.config

    def _records(self, name: str) -> bool:
        return self._recorder is not None and self._recorder.wants(name)

    async def wait_idle(self) -> None:
        """Wait until no connection is being served (bound it with ``asyncio.timeout``)."""
        await self._idle.wait()

    # -- the handshake --------------------------------------------------------------------

    def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | Awaitable[Response | None] | None:
        subprotocols = [
            item.strip()
            for value in request.headers.get_all("Sec-WebSocket-Protocol")
            for item in value.split(",")
            if item.strip()
        ]
        upgrade = UpgradeRequest.from_target(
            request.path, list(request.headers.raw_items()), subprotocols
        )
        where = route(upgrade.path)
        if where is None:
            return _json(
                404,
                _error_body(
                    f"no realtime endpoint at {upgrade.path!r}; connect to /v1/realtime?model=... "
                    "or /cassettes/<name>/v1/realtime?model=...",
                    "not_found",
                ),
            )
        name = where.cassette or self._current
        report = ConnectionReport(id=next(self._ids), cassette=name, path=_shown_path(request.path))
        self._reports.append(report)
        if name is None:
            report.outcome, report.finished = "refused", True
            return _json(
                404,
                _error_body(
                    "no cassette selected: name one in the path (/cassettes/<name>/v1/realtime), "
                    "with POST /__fakeupstream/cassette?name=<name>, or with --cassette",
                    "no_cassette",
                    available=self.library.names(),
                ),
            )
        if self._recorder is not None and self._recorder.wants(name):
            return self._recorder.open(connection, upgrade.with_path(where.path), name, report)
        try:
            cassette = self.library.load(name)
        except CassetteNotFound as exc:
            report.outcome, report.finished = "refused", True
            return _json(
                404, _error_body(str(exc), "unknown_cassette", available=list(exc.available))
            )
        except CassetteError as exc:
            report.outcome, report.finished = "refused", True
            return _json(
                500, _error_body(f"cassette {name!r} is malformed: {exc}", "invalid_cassette")
            )
        ids = EventIds(report.id)
        number = self._connections_by_cassette.get(name, 0)
        self._connections_by_cassette[name] = number + 1
        episode = cassette.episode(number)
        report.episode = min(number, len(cassette.episodes) - 1)
        decision = decide(episode.handshake, upgrade.with_path(where.path), ids)
        if isinstance(decision, Refuse):
            report.outcome, report.finished = "refused", True
            report.answered_by = decision.why
            return _json(decision.status, decision.body, decision.headers)
        steps: Sequence[Step]
        if isinstance(decision, Answer):
            report.outcome, report.answered_by = "answered", decision.why
            steps = decision.steps
        else:
            report.outcome = "replayed"
            steps = episode.timeline
            if decision.differences:
                report.mismatches.append(
                    Mismatch(
                        what="unexpected upgrade request",
                        step=None,
                        line=None,
                        expected=None,
                        actual=_shown_path(request.path),
                        differences=list(decision.differences),
                    )
                )
        self._plans[connection] = _Plan(cassette, steps, report, ids)
        self._enter()
        # If the connection dies between the 101 and the handler, websockets never calls
        # the handler: this reaper releases the plan so wait_idle() does not hang.
        reaper = asyncio.get_running_loop().create_task(self._reap_unhandled(connection))
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        if response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
            return
        plan = self._plans.pop(connection, None)
        if plan is not None:  # websockets refused the upgrade itself (e.g. not a WebSocket)
            plan.report.outcome, plan.report.finished = "refused", True
            plan.report.close_reason = f"HTTP {response.status_code}"
            self._leave()

    async def _reap_unhandled(self, connection: ServerConnection) -> None:
        await connection.wait_closed()
        plan = self._plans.pop(connection, None)
        if plan is not None:
            plan.report.outcome, plan.report.finished = "refused", True
            plan.report.close_reason = "the connection ended during the handshake"
            self._leave()

    # -- the session ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        relay = None if self._recorder is None else self._recorder.take(ws)
        if relay is not None:
            assert self._recorder is not None
            try:
                await self._recorder.relay(ws, relay)
            except Exception as exc:  # a bug: report it, never leave the client hanging
                logger.exception("connection %d failed while recording", relay.report.id)
                self.errors.append(exc)
                with contextlib.suppress(Exception):
                    await ws.close(1011, "fakeupstream internal error")
            return
        plan = self._plans.pop(ws, None)
        if plan is None:  # pragma: no cover - process_request always leaves a plan
            await ws.close(1011, "fakeupstream: no plan for this connection")
            return
        report = plan.report
        loop = asyncio.get_running_loop()
        shift = 0
        if plan.cassette.recorded.at is not None:
            shift = round(time.time() - plan.cassette.recorded.at.timestamp())
        session = ReplaySession(
            plan.steps,
            report,
            start=loop.time(),
            speed=self.speed,
            default_match=self.match or plan.cassette.match,
            time_shift=shift,
            ids=plan.ids,
            cassette=plan.cassette.name,
            fresh_ids=IdRewriter(str(report.id)) if self.fresh_ids else None,
        )
        logger.debug("connection %d: %s, cassette %r", report.id, report.path, report.cassette)
        try:
            await self._replay(ws, session, loop)
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

    async def _replay(
        self, ws: ServerConnection, session: ReplaySession, loop: asyncio.AbstractEventLoop
    ) -> None:
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

    def _enter(self) -> None:
        self._busy += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()

    # -- the front door -------------------------------------------------------------------

    def _websocket_connection(self) -> ServerConnection:
        """Build a ``websockets`` connection exactly as ``websockets.serve`` would."""
        assert self._server is not None
        protocol = ServerProtocol(
            extensions=enable_server_permessage_deflate(None),
            select_subprotocol=_select_subprotocol,
            max_size=_MAX_MESSAGE,
            logger=logger,
        )
        return ServerConnection(protocol, self._server, max_queue=64)


class _Plan:
    """What ``process_request`` decided, for the connection handler."""

    __slots__ = ("cassette", "ids", "report", "steps")

    def __init__(
        self, cassette: Cassette, steps: Sequence[Step], report: ConnectionReport, ids: EventIds
    ) -> None:
        self.cassette = cassette
        self.steps = steps
        self.report = report
        self.ids = ids


class _FrontDoor(asyncio.Protocol):
    """Reads one request head; answers admin requests, hands the rest to ``websockets``."""

    def __init__(self, owner: FakeUpstream) -> None:
        self._owner = owner
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._owner._front_doors.add(self)
        self._timer = asyncio.get_running_loop().call_later(_HEAD_TIMEOUT, self.abort)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEAD:
                self._answer(
                    json_response(431, _error_body("request head too large", "head_too_large"))
                )
            return
        request_line = bytes(self._buffer[: self._buffer.find(b"\r\n")])
        try:
            method, target, _version = request_line.decode("latin-1").split(" ", 2)
        except ValueError:
            self._answer(
                json_response(400, _error_body("malformed HTTP request line", "bad_request"))
            )
            return
        if target.startswith(ADMIN_PREFIX):
            self._answer(handle_admin(method, target, self._owner))
            return
        if method != "GET":
            self._answer(
                json_response(
                    405,
                    _error_body(
                        f"{method} is not supported here: open a WebSocket with GET", "bad_method"
                    ),
                    (("Allow", "GET"),),
                )
            )
            return
        self._hand_over()

    def _hand_over(self) -> None:
        assert self._transport is not None
        self._stop_waiting()
        connection = self._owner._websocket_connection()
        self._transport.set_protocol(connection)
        connection.connection_made(self._transport)
        connection.data_received(bytes(self._buffer))

    def _answer(self, response: HttpResponse) -> None:
        assert self._transport is not None
        self._stop_waiting()
        self._transport.write(response.encode())
        self._transport.close()

    def _stop_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._owner._front_doors.discard(self)

    def abort(self) -> None:
        """Drop a client that never finished its request head."""
        self._stop_waiting()
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()


def _select_subprotocol(
    protocol: ServerProtocol, subprotocols: Sequence[Subprotocol]
) -> Subprotocol | None:
    # Browsers offer ["realtime", "openai-insecure-api-key.<key>"] and fail unless the
    # server selects one; the GA API selects "realtime" (reference §1.4).
    return Subprotocol("realtime") if "realtime" in subprotocols else None


def _error_body(message: str, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "error": {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": None,
            **extra,
        }
    }


def _json(status: int, body: Any, headers: Sequence[tuple[str, str]] = ()) -> Response:
    payload = json.dumps(body).encode()
    all_headers = Headers([("Content-Type", "application/json"), *headers])
    all_headers["Content-Length"] = str(len(payload))
    all_headers["Connection"] = "close"
    return Response(status, http.HTTPStatus(status).phrase, all_headers, payload)


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _shown_path(target: str) -> str:
    """The request target with key-bearing query parameters masked (never log secrets)."""
    return redact_target(target)
