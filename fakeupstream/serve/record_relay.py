"""The recording relay: the fake server's connections passed on to the real API, and saved.

When a connection's cassette is to be recorded (:mod:`.recordmode`), the
server hands it here instead of replaying. The upstream connection is opened
in ``process_request``, **before** the client's upgrade is accepted, so an
upstream refusal reaches the client as that HTTP status and body (and is
recorded), and an unreachable upstream is an honest HTTP 502 rather than a 101
followed by a dropped socket. Then two pumps relay frames both ways, feeding a
sans-I/O :class:`~fakeupstream.record_session.RecordingSession`; closes are passed
on like a gateway does (the client gets the upstream's code and reason). When
the connection ends, however it ends, the episode is saved through a
:class:`~fakeupstream.storage.file_writer.CassetteWriter` (lock, leak guard, atomic write).

What goes upstream: the ``Authorization`` of the real key, the client's query
without key-bearing parameters, the client's headers except hop-by-hop,
WebSocket, ``Host`` and credential headers (so a gateway that sends
``OpenAI-Beta`` is recorded being rejected, faithfully), and the client's
subprotocols except ``openai-insecure-api-key.*``. A client that presents an
``ek_`` key the upstream minted through this recorder is opened upstream with that
key instead, so the session starts from the config it was minted for, as live.

The REST routes (client secrets, calls, models) are forwarded the same way
(:meth:`RecordRelay.forward_http`, :mod:`fakeupstream.http_record`): the real key
upstream, the answer back to the client, and the exchange saved into the same
cassette as the connections, in the order things happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from ..cassette import Direction
from ..exceptions import RecordError
from ..http_record import (
    NOT_FORWARDED,
    MintedKeys,
    passed_back,
    recorded_exchange,
    upstream_request,
)
from ..http_request import HttpRequest
from ..planning import RecordPlan
from ..record_session import BeforeRecord, RecordingSession, client_secrets, forwardable_close
from ..recordmode import RecordMode, RecordPolicy
from ..redaction import (
    KEY_SUBPROTOCOL,
    Redactor,
    is_secret_header,
    is_secret_param,
    redact_target,
    redact_url,
)
from ..report import ConnectionReport
from ..responses import HttpResponse, error_response
from ..rest import ephemeral_key
from ..storage.file_writer import CassetteWriter, SavedCassette
from ..storage.sidecars import DEFAULT_THRESHOLD
from ..upgrade import REALTIME_PATH, UpgradeRequest
from .http_forward import send_upstream
from .logs import PROTOCOL_LOGGER, log_connection
from .record_saves import SaveQueue, Turn

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_UPSTREAM",
    "RecordRelay",
    "RecordingConfig",
    "upstream_headers",
    "upstream_subprotocols",
    "upstream_url",
]

logger = logging.getLogger("fakeupstream")

DEFAULT_UPSTREAM = "wss://api.openai.com/v1/realtime"
API_KEY_ENV = "OPENAI_API_KEY"

# How long a forwarded REST request may take to be answered (a call's SDP takes seconds).
_ANSWER_TIMEOUT = 60.0
# Upstream refusal headers worth passing to the client (not recorded: see RecordingSession).
_PASSTHROUGH = ("Content-Type", "Retry-After", "WWW-Authenticate")


@dataclass(frozen=True)
class RecordingConfig:
    """How a :class:`~fakeupstream.serve.server.FakeUpstream` records.

    Attributes:
        mode: which cassettes are recorded (see :mod:`fakeupstream.recordmode`).
        api_key: the real key, sent upstream as ``Authorization: Bearer``; never
            written anywhere (``repr`` hides it).
        upstream: the realtime URL to record against. ``http(s)://`` is read as
            ``ws(s)://``; a URL whose path does not end in ``/realtime`` gets
            ``/v1/realtime`` appended (so a base URL works too).
        before_record: hooks run on every frame before redaction; see
            :data:`~fakeupstream.record_session.BeforeRecord`.
        secrets: more values that must never reach a cassette.
        connect_timeout: seconds to wait for the upstream's handshake.
        sidecar_threshold: audio payloads longer than this go to sidecar files
            (``None``: keep them in the YAML).
        on_saved: called (on the server's loop) after each connection is saved.
        on_error: called when a connection could not be saved (e.g. the leak guard
            refused it); the error is also kept in ``FakeUpstream.errors``.
    """

    mode: RecordMode
    api_key: str = field(repr=False)
    upstream: str = DEFAULT_UPSTREAM
    before_record: tuple[BeforeRecord, ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False)
    connect_timeout: float = 10.0
    sidecar_threshold: int | None = DEFAULT_THRESHOLD
    on_saved: Callable[[SavedCassette], None] | None = None
    on_error: Callable[[RecordError], None] | None = None

    def __post_init__(self) -> None:
        if not self.api_key.strip():
            raise RecordError(_missing_key())
        scheme = urlsplit(self.upstream).scheme
        if scheme not in ("ws", "wss", "http", "https"):
            raise RecordError(
                f"cannot record against {redact_url(self.upstream)!r}: expected a "
                "ws://, wss://, http:// or https:// URL"
            )
        if not self.connect_timeout > 0:
            raise RecordError(f"connect_timeout must be positive, got {self.connect_timeout}")

    @classmethod
    def from_env(
        cls, mode: RecordMode, *, environ: Mapping[str, str] | None = None, **options: Any
    ) -> RecordingConfig:
        """Build a config with the key from ``OPENAI_API_KEY``.

        Args:
            mode: the record mode.
            environ: where to read the key (``os.environ`` by default).
            options: the other attributes.

        Raises:
            RecordError: the variable is not set (the message says how to set it).
        """
        key = (os.environ if environ is None else environ).get(API_KEY_ENV, "").strip()
        if not key:
            raise RecordError(_missing_key())
        return cls(mode=mode, api_key=key, **options)

    @property
    def upstream_base(self) -> str:
        """The realtime WebSocket URL recorded against, without any query."""
        return upstream_url(self.upstream, ())


def _missing_key() -> str:
    return (
        f"{API_KEY_ENV} is not set: recording needs a real key "
        f"(export {API_KEY_ENV}=sk-...; it is only sent upstream, never written to a cassette)"
    )


def upstream_url(base: str, query: Sequence[tuple[str, str]]) -> str:
    """The upstream URL for a client's query (key-bearing parameters left out)."""
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    if not path.endswith("/realtime"):
        path += REALTIME_PATH
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    pairs += [(name, value) for name, value in query if not is_secret_param(name)]
    return urlunsplit((scheme, parts.netloc, path, urlencode(pairs, safe="/:"), ""))


def upstream_headers(request: UpgradeRequest, api_key: str) -> list[tuple[str, str]]:
    """The headers sent upstream: the real key, then the client's that are safe to pass on."""
    headers = [("Authorization", f"Bearer {api_key}")]
    headers += [
        (name, value)
        for name, value in request.headers
        if name.lower() not in NOT_FORWARDED
        and not name.lower().startswith("sec-websocket-")
        and not is_secret_header(name)
    ]
    return headers


def upstream_subprotocols(request: UpgradeRequest) -> list[Subprotocol]:
    """The client's subprotocols, without the one carrying a key."""
    return [
        Subprotocol(protocol)
        for protocol in request.subprotocols
        if not protocol.startswith(KEY_SUBPROTOCOL)
    ]


class _NoRedirectConnect(connect):
    """``connect`` that reports a redirect instead of following it.

    ``websockets`` follows redirects, even to another host, and would send the
    real key there: the redirect goes back to the client as the upstream's answer.
    """

    def process_redirect(self, exc: Exception) -> Exception | str:
        """Never follow: hand back the original error."""
        return exc


@dataclass(eq=False)
class _Relay:
    """A recorded connection: opened upstream, waiting for (or in) the relay."""

    name: str
    session: RecordingSession
    report: ConnectionReport
    turn: Turn
    upstream: ClientConnection | None = None
    # When the upstream answered: `recorded.at`, the anchor that replay shifts
    # `expires_at` / `created_at` from, is the start of the session, not its end.
    started: datetime | None = None


class RecordRelay:
    """Relays and records the connections a server's planner marks for recording.

    Args:
        config: how to record.
        writer: saves each recorded connection (the storage layer's file writer).
        policy: the server's record policy: how each save changes the file.
        errors: the server's list of errors; failed saves are appended to it.
        enter: called when a relayed connection starts (the server counts them).
        leave: called when it is over.
    """

    def __init__(
        self,
        config: RecordingConfig,
        writer: CassetteWriter,
        policy: RecordPolicy,
        errors: list[BaseException],
        *,
        enter: Callable[[], None],
        leave: Callable[[], None],
    ) -> None:
        self.config = config
        self._saves = SaveQueue(
            writer,
            policy,
            errors,
            upstream=config.upstream_base,
            on_saved=config.on_saved,
            on_error=config.on_error,
        )
        self._errors = errors
        self._enter = enter
        self._leave = leave
        self._pending: dict[ServerConnection, _Relay] = {}
        self._connecting: set[asyncio.Task[ClientConnection]] = set()
        self._watchers: set[asyncio.Task[Any]] = set()
        self._minted = MintedKeys()

    # -- the handshake --------------------------------------------------------------------

    async def open(self, connection: ServerConnection, plan: RecordPlan) -> HttpResponse | None:
        """Open the upstream for a client's upgrade request (``process_request``).

        Returns:
            ``None`` when the upstream accepted (the connection then goes to
            :meth:`serve`), or the HTTP response for the client: the upstream's
            refusal (recorded), 502 (unreachable), 504 (too slow) or 503 (stopping).
        """
        loop = asyncio.get_running_loop()
        name, report = plan.name, plan.report
        session = RecordingSession(
            plan.request,
            redactor=Redactor((self.config.api_key, *self.config.secrets)),
            before_record=self.config.before_record,
        )
        # Saves of one cassette happen in the order its connections opened, so
        # episodes replay in that order even when a later connection ends first.
        relay = _Relay(name, session, report, self._saves.turn(name))
        url = upstream_url(self.config.upstream, plan.request.query)
        report.start_recording()
        # A key the upstream minted through this recorder opens the session it was minted for.
        key = ephemeral_key(plan.request.headers, plan.request.subprotocols)
        key = key if key is not None and key in self._minted else self.config.api_key
        try:
            relay.upstream = await self._connect(url, plan.request, key)
            relay.started = datetime.now(UTC)
        except InvalidStatus as exc:
            return await self._refused(relay, exc)
        except asyncio.CancelledError:
            relay.turn.release()
            report.refuse()
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our own handshake is being cancelled: let it go
            return _upstream_error(503, "shutting_down", "fakeupstream is shutting down")
        except Exception as exc:
            relay.turn.release()
            report.refuse()
            logger.warning("recording %r: upstream %s failed: %s", name, redact_url(url), exc)
            return _connect_failure(exc, self.config.connect_timeout)
        session.accepted(loop.time())
        self._pending[connection] = relay
        self._enter()
        watcher = asyncio.create_task(self._reap_if_orphaned(connection))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return None

    async def _connect(self, url: str, request: UpgradeRequest, key: str) -> ClientConnection:
        """Open the upstream (with ``key``) as a task that :meth:`cancel_connecting` can cancel."""

        async def open_upstream() -> ClientConnection:
            return await _NoRedirectConnect(
                url,
                additional_headers=upstream_headers(request, key),
                subprotocols=upstream_subprotocols(request) or None,
                open_timeout=self.config.connect_timeout,
                # Audio events can be megabytes; the GA SDK turns compression off too.
                max_size=None,
                compression=None,
                logger=PROTOCOL_LOGGER,
            )

        task = asyncio.create_task(open_upstream())
        self._connecting.add(task)
        try:
            return await task
        finally:
            self._connecting.discard(task)

    async def _refused(self, relay: _Relay, exc: InvalidStatus) -> HttpResponse:
        upstream = exc.response
        body = bytes(upstream.body or b"")
        headers = tuple(
            (name, value) for name in _PASSTHROUGH for value in upstream.headers.get_all(name)
        )
        if 200 <= upstream.status_code <= 599:
            relay.session.refused(upstream.status_code, list(upstream.headers.raw_items()), body)
            await self._save(relay)
        else:  # pragma: no cover - websockets only raises InvalidStatus for these
            relay.turn.release()
        relay.report.refuse(f"HTTP {upstream.status_code}")
        return HttpResponse(upstream.status_code, body, headers)

    def owns(self, connection: ServerConnection) -> bool:
        """Tell whether ``connection`` is one this relay opened upstream."""
        return connection in self._pending

    async def _reap_if_orphaned(self, connection: ServerConnection) -> None:
        """Close the upstream if the client's handshake failed after it was opened."""
        await connection.wait_closed()
        relay = self._pending.pop(connection, None)
        if relay is None:
            return
        if relay.upstream is not None:
            await relay.upstream.close(1001, "client went away")
        relay.report.refuse()
        relay.turn.release()
        self._leave()

    # -- the session ----------------------------------------------------------------------

    async def serve(self, client: ServerConnection) -> None:
        """Relay frames both ways until one side closes, then save the episode."""
        relay = self._pending.pop(client)
        assert relay.upstream is not None
        loop = asyncio.get_running_loop()
        session = relay.session
        try:
            await _relay(client, relay.upstream, session, loop)
        except Exception as exc:  # a bug: report it, never leave the client hanging
            logger.exception("connection %d failed while recording", relay.report.id)
            self._errors.append(exc)
            with contextlib.suppress(Exception):
                await client.close(1011, "fakeupstream internal error")
        finally:
            try:
                # Normally a no-op (the relay closed it); after an error it keeps the
                # upstream socket from outliving the session.
                with contextlib.suppress(Exception):
                    await relay.upstream.close(1011, "fakeupstream error")
                if not session.closed:
                    session.ended(Direction.CLIENT, None, None, loop.time())
                await self._save(relay)
            finally:
                log_connection(logger, relay.report)
                self._leave()

    async def _save(self, relay: _Relay) -> None:
        session, report = relay.session, relay.report
        refuse = None
        if session.error is not None:
            # Not chained: the hook's traceback holds unredacted frames in its locals.
            refuse = RecordError(
                f"a before_record hook failed ({session.error!r}): the connection to "
                f"cassette {relay.name!r} was not saved"
            )
        saved = await self._saves.save(
            relay.name,
            session.episode(),
            relay.turn,
            model=session.model,
            secrets=session.redactor.secrets,
            now=relay.started,
            refuse=refuse,
        )
        if isinstance(saved, RecordError):
            report.not_recorded(saved.public(self._saves.writer.directory))  # served: no dir
        else:
            report.recorded(session.frames)

    # -- the REST side --------------------------------------------------------------------

    async def forward_http(self, name: str, request: HttpRequest) -> HttpResponse:
        """Forward a REST request upstream with the real key, and record it into ``name``.

        The client gets the upstream's answer at once; the exchange is saved in the
        background, after the connections to ``name`` that opened before it. An
        upstream that cannot be reached gets 502 (one too slow, 504), and nothing is
        saved.
        """
        started, turn = datetime.now(UTC), self._saves.turn(name)
        upstream = upstream_request(self.config.upstream, request, self.config.api_key)
        try:
            answer = await send_upstream(
                upstream,
                connect_timeout=self.config.connect_timeout,
                answer_timeout=_ANSWER_TIMEOUT,
            )
        except (OSError, ValueError) as exc:  # TimeoutError is an OSError
            turn.release()
            where = redact_target(request.target)
            logger.warning(
                "recording %r: %s %s upstream failed: %s", name, request.method, where, exc
            )
            return _http_failure(exc)
        except BaseException:  # cancelled (the server is stopping): nothing to save
            turn.release()
            raise
        minted = self._minted.add_from(answer)
        redactor = Redactor((self.config.api_key, *self.config.secrets))
        for secret in client_secrets(UpgradeRequest.from_target(request.target, request.headers)):
            redactor.add_secret(secret)
        exchange = recorded_exchange(request, answer, redactor)
        self._enter()
        secrets = (*redactor.secrets, *minted)  # the real ek_ values must not be written
        task = asyncio.create_task(
            self._saves.save(name, exchange, turn, model=None, secrets=secrets, now=started)
        )
        self._watchers.add(task)
        task.add_done_callback(self._saved_in_background)
        return passed_back(answer)

    def _saved_in_background(self, task: asyncio.Task[Any]) -> None:
        self._watchers.discard(task)
        self._leave()

    # -- shutdown -------------------------------------------------------------------------

    def cancel_connecting(self) -> None:
        """Give up the upstream handshakes in progress (their clients get 503)."""
        for task in self._connecting:
            task.cancel()

    async def aclose(self) -> None:
        """Wait for the cleanup of connections whose handshake failed, and for the saves
        of HTTP exchanges."""
        if self._watchers:
            await asyncio.gather(*self._watchers, return_exceptions=True)


async def _pump(
    src: Connection,
    dst: Connection,
    direction: Direction,
    session: RecordingSession,
    loop: asyncio.AbstractEventLoop,
) -> ConnectionClosed | None:
    """Copy frames from ``src`` to ``dst``, recording each; return ``src``'s close.

    Returns ``None`` when ``dst`` closed first: the pump reading ``dst`` reports it.
    """
    while True:
        try:
            message = await src.recv()
        except ConnectionClosed as exc:
            return exc
        # Recorded before it is passed on: it happened, even if the other side is gone.
        session.frame(direction, message, loop.time())
        try:
            await dst.send(message)
        except ConnectionClosed:
            return None


async def _relay(
    client: Connection,
    upstream: Connection,
    session: RecordingSession,
    loop: asyncio.AbstractEventLoop,
) -> None:
    # Dict order matters: when both are found closed together, the upstream's close
    # is the one recorded and passed on (it carries the diagnosis).
    pumps = {
        asyncio.create_task(_pump(upstream, client, Direction.SERVER, session, loop)): (
            Direction.SERVER,
            client,
        ),
        asyncio.create_task(_pump(client, upstream, Direction.CLIENT, session, loop)): (
            Direction.CLIENT,
            upstream,
        ),
    }
    try:
        pending: set[asyncio.Task[ConnectionClosed | None]] = set(pumps)
        while pending:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task, (side, other) in pumps.items():
                if not task.done() or (closed := task.result()) is None:
                    continue
                code = None if closed.rcvd is None else closed.rcvd.code
                reason = None if closed.rcvd is None else closed.rcvd.reason
                session.ended(side, code, reason, loop.time())
                who = "upstream" if side is Direction.SERVER else "client"
                await other.close(*forwardable_close(code, reason, who))
                return
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


def _upstream_error(status: int, code: str, message: str) -> HttpResponse:
    return error_response(status, message, code, type="upstream_error")


def _http_failure(exc: Exception) -> HttpResponse:
    """504 when the upstream did not answer a REST request in time, else 502."""
    if isinstance(exc, TimeoutError):
        return _upstream_error(504, "upstream_timeout", "the upstream did not answer in time")
    message = f"cannot forward the request upstream: {_describe(exc)}"
    return _upstream_error(502, "upstream_unreachable", message)


def _connect_failure(exc: Exception, timeout: float) -> HttpResponse:
    """504 when the upstream was too slow, 502 when it could not be reached."""
    if isinstance(exc, TimeoutError):
        message = f"the upstream did not complete the WebSocket handshake within {timeout:g} s"
        return _upstream_error(504, "upstream_timeout", message)
    message = f"cannot open the upstream WebSocket: {_describe(exc)}"
    return _upstream_error(502, "upstream_unreachable", message)


def _describe(exc: Exception) -> str:
    """Say what failed without echoing anything the client sent."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"
