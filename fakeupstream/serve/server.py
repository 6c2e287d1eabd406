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
import dataclasses
import http
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..access import AccessPolicy
from ..admin import cassette_to_load, handle_admin, lists_cassettes
from ..cassette import Cassette, is_sendable_close_code
from ..exceptions import CassetteError
from ..faults import Fault, FaultBoard, build_fault
from ..ids import IdRewriter
from ..planning import (
    Admission,
    ConnectionPlanner,
    NeedsLoading,
    Plan,
    RecordPlan,
    Refused,
    ReplayPlan,
)
from ..recordmode import RecordPolicy
from ..replay import ReplayOptions, ReplaySession
from ..report import ConnectionReport, Outcome
from ..responses import HttpResponse, error_response, reason_phrase
from ..rest import target_with_model
from ..rules import Rule, RuleClose
from ..storage.file_writer import CassetteWriter
from ..storage.library import CassetteLibrary
from ..timeshift import seconds_since
from ..unexpected import OnUnexpected
from .fault_runner import FaultRunner, deafenable, upgrade_fault
from .front_door import front_door
from .logs import PROTOCOL_LOGGER, RedactSecrets, log_connection
from .record_relay import RecordingConfig, RecordRelay
from .replay_loop import replay_loop
from .rest_side import RestSide, load_off_loop
from .tls import ServerCertificate

__all__ = ["DEFAULT_BACKLOG", "MAX_REPORTS", "FakeUpstream"]

logger = logging.getLogger("fakeupstream")
# A library logs only when the application configures logging (the CLI does with -v);
# without this, Python's last-resort handler would print websockets' handshake tracebacks.
logger.addHandler(logging.NullHandler())
# websockets logs every header at debug level through this logger: never show a key.
logger.addFilter(RedactSecrets())

DEFAULT_BACKLOG = 1024
"""Listen backlog: asyncio's default (100) overflows when a thousand clients connect at once."""
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
        tls: serve ``wss://`` and ``https://``: ``True`` for the local CA's
            certificate (:meth:`ServerCertificate.local`, needs the ``tls`` extra),
            or a :class:`ServerCertificate` of your own.
        backlog: the listen queue: connections the kernel holds until they are accepted
            (it caps this at ``net.core.somaxconn``); size it for bursts of clients.
        reuse_port: share the port with other processes (``SO_REUSEPORT``), as the
            workers of ``fakeupstream serve --workers N`` do.
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
        tls: bool | ServerCertificate = False,
        backlog: int = DEFAULT_BACKLOG,
        reuse_port: bool = False,
        access: AccessPolicy | None = None,
    ) -> None:
        self.certificate: ServerCertificate | None = (
            ServerCertificate.local() if tls is True else tls or None
        )
        """The TLS certificate served, or ``None`` for plain ``ws://``."""
        self._ssl = None if self.certificate is None else self.certificate.server_context()
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
        self._backlog = backlog
        self._reuse_port = reuse_port
        self._requested_port = port
        self._default = cassette
        self._current = cassette
        # Bounded, so a long-running `fakeupstream serve` does not grow without end.
        self._reports: collections.deque[ConnectionReport] = collections.deque(maxlen=MAX_REPORTS)
        # Accepted connections whose handler has not run yet: an Admission is prepared
        # into its ReplayPlan by the handler (after the 101).
        self._plans: dict[ServerConnection, ReplayPlan | Admission] = {}
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._server: Server | None = None
        self.faults = FaultBoard()
        """The faults armed for the next connections (see :mod:`fakeupstream.faults`)."""
        self._rest_side = RestSide(
            self.library, self._planner, self._relay, lambda: self._current, self._internal_error
        )
        self._rest = self._rest_side.state
        self._rules: list[Rule] = []  # added by a test with on(); before the cassette's

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
            # No select_subprotocol: websockets binds it to each connection's protocol,
            # a reference cycle that leaves every connection to the garbage collector
            # (about 60 objects each); _process_response names the subprotocol instead.
            server_header=None,
            # The handshake includes the upstream's when recording: leave it room.
            open_timeout=_OPEN_TIMEOUT + (self._relay.config.connect_timeout if self._relay else 0),
            max_size=_MAX_MESSAGE,
            max_queue=64,
            logger=PROTOCOL_LOGGER,
            create_connection=deafenable(
                front_door(self._admin, self._rest_side.answer, self._screen_admin, self._lost)
            ),
            # Documented: extra keyword arguments go to loop.create_server.
            ssl=self._ssl,
            backlog=self._backlog,
            reuse_port=self._reuse_port or None,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        logger.debug("listening on %s (cassettes in %s)", self.url, self.library.directory)

    async def stop(self) -> None:
        """Close every connection (code 1001) and release the port."""
        if self._server is None:
            return
        server, self._server = self._server, None
        if self._relay is not None:
            self._relay.cancel_connecting()
        server.close()
        await server.wait_closed()
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
        """``ws://HOST:PORT`` (``wss://`` with TLS): append ``/v1/realtime?model=...``."""
        scheme = "ws" if self._ssl is None else "wss"
        return f"{scheme}://{_netloc(self.host, self.port)}"

    @property
    def http_url(self) -> str:
        """``http(s)://HOST:PORT``: the base URL a gateway or SDK is configured with."""
        scheme = "http" if self._ssl is None else "https"
        return f"{scheme}://{_netloc(self.host, self.port)}"

    @property
    def ca_certificate(self) -> Path | None:
        """The CA file clients must trust (local CA only), else ``None``."""
        return None if self.certificate is None else self.certificate.ca

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

    def fault(self, kind: str, *, count: int = 1, **params: object) -> Fault:
        """Arm a fault for the next ``count`` connections (see :mod:`fakeupstream.faults`).

        Raises:
            FaultError: not a valid fault; the message lists the valid values.
        """
        fault = build_fault(kind, params)
        self.faults.arm(fault, count)
        return fault

    def records(self, name: str) -> bool:
        """Tell whether connections to cassette ``name`` are recorded (else replayed)."""
        return self._planner.records(name)

    def reports(self) -> list[ConnectionReport]:
        """One report per connection so far, oldest first (the last ``MAX_REPORTS``)."""
        return list(self._reports)

    def reset(self) -> None:
        """Forget the reports and errors, disarm the faults, and start every cassette at
        its first episode."""
        self.faults.disarm()
        self._reports.clear()
        self._planner.reset()
        self._rest.playback.reset()
        self.errors.clear()
        self._rules.clear()

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

    # -- HTTP answers: the admin API (the REST side is in rest_side.py) -------------------

    def _admin(self, method: str, target: str) -> HttpResponse | Awaitable[HttpResponse]:
        name = cassette_to_load(method, target)
        names = self.library.names() if lists_cassettes(method, target) else [name]
        stale = [name for name in names if name is not None and not self.library.is_current(name)]
        if not stale:
            return self._answer_admin(method, target)  # nothing to parse: no thread
        return self._load_then_answer_admin(method, target, stale)

    async def _load_then_answer_admin(
        self, method: str, target: str, names: list[str]
    ) -> HttpResponse:
        for name in names:
            await load_off_loop(self.library, name)
        return self._answer_admin(method, target)

    def _answer_admin(self, method: str, target: str) -> HttpResponse:
        try:
            return handle_admin(method, target, self)
        except Exception as exc:
            return self._internal_error(exc, f"admin request {method}")

    def _internal_error(self, exc: Exception, what: str) -> HttpResponse:
        """A bug: log it, keep it for the test that started the server (``errors``),
        and answer like a server would."""
        logger.exception("%s failed", what)
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

    # -- the handshake: admit, plan, execute ----------------------------------------------

    def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | Awaitable[Response | None] | None:
        return self._admit(connection, request, cached=self.library.cached)

    async def _load_then_admit(
        self, connection: ServerConnection, request: Request, name: str
    ) -> Response | None:
        await load_off_loop(self.library, name)
        answer = self._admit(connection, request, cached=None)  # loaded, or an error to tell
        return await answer if isinstance(answer, Awaitable) else answer

    def _admit(
        self,
        connection: ServerConnection,
        request: Request,
        cached: Callable[[str], Cassette | None] | None,
    ) -> Response | Awaitable[Response | None] | None:
        headers = list(request.headers.raw_items())
        offered = _offered_subprotocols(request.headers)
        key = self._rest.check_key(headers, offered, time.time()) or self._rest.sideband(
            request.path
        )
        target = target_with_model(request.path, key)
        admitted = self._planner.admit(
            target, headers, offered, selected=self._current, key=key, cached=cached
        )
        if isinstance(admitted, NeedsLoading):  # nothing taken yet: load, then admit again
            return self._load_then_admit(connection, request, admitted.name)
        if isinstance(admitted, Admission):
            if not self.faults.armed():
                # The common case: the rest of the plan is made once the 101 is on its way.
                self._plans[connection] = admitted
                self._enter()
                return None
            plan: Plan = self._planner.prepare(admitted)  # a fault may act on the upgrade
        else:
            plan = admitted
        if plan.report is not None:
            self._reports.append(plan.report)
        if isinstance(plan, Refused):
            if plan.report is not None:
                self._log(plan.report, status=plan.response.status)
            return _to_websockets(plan.response)
        if isinstance(plan, RecordPlan):
            assert self._relay is not None
            return self._open_relay(connection, plan)
        armed = self.faults.take()  # a connection that is replayed takes the armed faults
        if armed:
            plan = dataclasses.replace(plan, faults=(*armed, *plan.faults))
        plan, held = upgrade_fault(connection, plan)
        if isinstance(held, HttpResponse):
            return _to_websockets(held)
        # If the connection dies before the handler runs, websockets never calls it:
        # _lost then releases the plan, so wait_idle() does not hang.
        self._plans[connection] = plan
        self._enter()
        return held  # None, or the hold of a `delay` fault

    def _prepared(self, admitted: ReplayPlan | Admission) -> ReplayPlan:
        """The replay plan of a connection the server has accepted (or is accepting)."""
        if isinstance(admitted, ReplayPlan):
            return admitted
        plan = self._planner.prepare(admitted)
        self._reports.append(plan.report)
        return plan

    async def _open_relay(self, connection: ServerConnection, plan: RecordPlan) -> Response | None:
        assert self._relay is not None
        refusal = await self._relay.open(connection, plan)
        return None if refusal is None else _to_websockets(refusal)

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        if response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
            # Browsers offer ["realtime", "openai-insecure-api-key.<key>"] and fail unless
            # the server selects one; the GA API selects "realtime".
            if "realtime" in _offered_subprotocols(request.headers):
                response.headers["Sec-WebSocket-Protocol"] = "realtime"
            return
        admitted = self._plans.pop(connection, None)
        if admitted is not None:  # websockets refused the upgrade itself (not a WebSocket)
            plan = self._prepared(admitted)
            plan.report.refuse(f"HTTP {response.status_code}")
            self._log(plan.report, status=response.status_code)
            self._leave()

    def _lost(self, connection: ServerConnection) -> None:
        admitted = self._plans.pop(connection, None)  # the handler took it, if it ran
        if admitted is not None:
            plan = self._prepared(admitted)
            plan.report.refuse("the connection ended during the handshake")
            self._log(plan.report)
            self._leave()

    # -- the session ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        if self._relay is not None and self._relay.owns(ws):
            await self._relay.serve(ws)
            return
        admitted = self._plans.pop(ws, None)
        if admitted is None:  # pragma: no cover - process_request always leaves a plan
            await ws.close(1011, "fakeupstream: no plan for this connection")
            return
        plan = self._prepared(admitted)
        session = self._session(plan)
        report = plan.report
        logger.debug("connection %d: %s, cassette %r", report.id, report.path, report.cassette)
        faults = FaultRunner.for_plan(ws, plan, session, asyncio.get_running_loop().time())
        try:
            await replay_loop(
                ws, session, asyncio.get_running_loop(), report.id, faults, plan.session
            )
        except ConnectionClosed:
            pass
        except Exception as exc:  # a bug: report it, never leave the client hanging
            logger.exception("connection %d failed", report.id)
            self.errors.append(exc)
            report.add_protocol_error(f"internal error: {exc!r}")
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
            self._log(report)
            self._leave()

    def _session(self, plan: ReplayPlan) -> ReplaySession:
        """The replay engine for a planned connection, starting now."""
        return ReplaySession(
            plan.steps,
            plan.report,
            start=asyncio.get_running_loop().time(),
            speed=self.options.speed,
            default_match=self.options.match or plan.cassette.match,
            time_shift=seconds_since(plan.cassette.time_anchor, time.time()),
            ids=plan.ids,
            cassette=plan.cassette.name,
            fresh_ids=IdRewriter(str(plan.report.id)) if self.options.fresh_ids else None,
            on_unexpected=self.options.on_unexpected
            or plan.cassette.on_unexpected
            or OnUnexpected.EMULATE,
            rules=(*self._rules, *plan.cassette.rules),
            greet=plan.cassette.simulated and plan.report.outcome is Outcome.REPLAYED,
            wire=plan.wire,  # frames encoded once per timeline, not per connection
        )

    def _log(self, report: ConnectionReport, *, status: int | None = None) -> None:
        log_connection(
            logger, report, status=status, report_url=f"{self.http_url}/__fakeupstream/report"
        )

    def on(
        self,
        event: str,
        *,
        text: str | None = None,
        audio: str | None = None,
        function_call: str | None = None,
        arguments: str = "{}",
        error: tuple[str, str] | None = None,
        close: tuple[int, str] | None = None,
        when_text: str | None = None,
        tools: bool | None = None,
        last_item: str | None = None,
    ) -> Rule:
        """Answer client event ``event`` on the next connections, before the cassette's rules.

        Give exactly one reply: ``text`` (``{last_user_text}`` is replaced), ``audio``
        (a transcript), ``function_call`` (a tool name; ``""`` for the first declared
        tool) with ``arguments``, ``error=(code, message)`` or ``close=(code, reason)``.
        ``when_text`` (a regular expression on the last user text), ``tools`` and
        ``last_item`` narrow when it applies. :meth:`reset` forgets the rules.

        Raises:
            ValueError: not exactly one reply, or a bad pattern or close code.
        """
        if close is not None and not is_sendable_close_code(close[0]):
            raise ValueError(f"{close[0]} is not a close code that can be sent")
        rule = Rule(
            event=event,
            text_matches=when_text,
            tools=tools,
            last_item=last_item,
            text=text,
            audio=audio,
            function_call=None if function_call is None else (function_call or None, arguments),
            error=error,
            close=None if close is None else RuleClose(*close),
        )
        self._rules.append(rule)
        return rule

    def _enter(self) -> None:
        self._busy += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()


def _offered_subprotocols(headers: Headers) -> list[str]:
    return [
        item.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for item in value.split(",")
        if item.strip()
    ]


def _to_websockets(response: HttpResponse) -> Response:
    """The ``websockets`` form of a sans-I/O response (``Connection: close`` added)."""
    headers = Headers(list(response.headers))
    headers["Content-Length"] = str(len(response.body))
    headers["Connection"] = "close"
    return Response(response.status, reason_phrase(response.status), headers, response.body)


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
