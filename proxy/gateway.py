"""The asyncio gateway: accept ``/v1/realtime`` clients and relay them upstream.

The upstream connection is opened inside ``process_request``, that is
**before** the client's upgrade is accepted. A client therefore gets an honest
HTTP answer when the upstream cannot be reached (502), is too slow (504) or
refuses the upgrade (its own status and body), instead of a 101 followed by a
dropped socket. The open upstream connection waits in ``_pending`` until the
connection handler takes it; a watcher closes it if the client handshake fails
or the client disappears before that.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from proxy.config import REALTIME_PATH, ProxyConfig, UpstreamTarget, build_upstream_target
from proxy.front_door import ScreeningConnection
from proxy.handshake import check_request, error_response, upstream_failure_response
from proxy.logs import client_ws_logger, session_logger, upstream_ws_logger
from proxy.relay import RelayResult, relay
from proxy.rest_forward import ForwardRequest, build_forward, forwarding_connection, relay_http

__all__ = ["Gateway"]


class _NoRedirectConnect(ws_connect):
    """``connect`` that reports a redirect instead of following it.

    ``websockets`` follows redirects, even to another host, and would send the
    client's ``Authorization`` there. A gateway must not: the redirect comes
    back to the client as the upstream's HTTP answer.
    """

    def process_redirect(self, exc: Exception) -> Exception | str:
        """Never follow: hand back the original error."""
        return exc


@dataclass
class _Pending:
    """An upstream connection opened during a client's handshake."""

    upstream: ClientConnection
    model: str
    target: UpstreamTarget


class Gateway:
    """A realtime gateway serving ``ws://HOST:PORT/v1/realtime?model=M``.

    Use as an async context manager; it listens on entry and, on exit, closes
    every session (clients get 1001 and so do their upstreams), waits for the
    handlers and leaves no task or socket behind::

        async with Gateway(ProxyConfig(upstream="http://127.0.0.1:8765")) as gw:
            ...  # clients connect to gw.realtime_url("gpt-realtime")

    Args:
        config: Where and how to reach the upstream.
        host: Interface to listen on (loopback by default).
        port: Port to listen on; 0 picks a free one (see :attr:`port`).
        tls: A server context to serve ``wss://`` (clients such as the Node SDK
            dial nothing else); ``None`` serves plain ``ws://``.
    """

    def __init__(
        self,
        config: ProxyConfig,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self._tls = tls
        self._host = host
        self._port = port
        self._server: Server | None = None
        self._pending: dict[ServerConnection, _Pending] = {}
        self._connecting: set[asyncio.Task[ClientConnection]] = set()
        self._watchers: set[asyncio.Task[None]] = set()
        self._forwards: set[asyncio.Task[None]] = set()
        self._closing = False
        self._log = session_logger()

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("the gateway is not running; use 'async with Gateway(...)'")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """Base URL of the gateway, ``ws://HOST:PORT`` (``wss://`` with TLS), without a path."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        scheme = "ws" if self._tls is None else "wss"
        return f"{scheme}://{host}:{self.port}"

    def realtime_url(self, model: str) -> str:
        """The URL a client dials for a session with ``model``."""
        return f"{self.url}{REALTIME_PATH}?{urlencode({'model': model})}"

    async def __aenter__(self) -> Gateway:
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            process_request=self._process_request,
            # The handshake timeout includes our upstream connect; leave room
            # so that a slow upstream is reported as 504, not cut off silently.
            open_timeout=self.config.connect_timeout + 10,
            # Checked on each frame header, before its payload is read: a 500 MB
            # frame costs nothing but the close (1009) it gets.
            max_size=self.config.max_message_size,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_timeout,
            close_timeout=self.config.close_timeout,
            logger=client_ws_logger(),
            ssl=self._tls,  # websockets passes it on to loop.create_server
            create_connection=forwarding_connection(self._forward, ScreeningConnection),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening, end every session and wait until all is released."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing = True
        # Upstream connects in flight would hold the shutdown up to the
        # connect timeout; their clients get 503 instead.
        for task in self._connecting:
            task.cancel()
        for forward in self._forwards:
            forward.cancel()
        if self._forwards:
            await asyncio.gather(*self._forwards, return_exceptions=True)
        server.close()
        await server.wait_closed()
        if self._watchers:
            await asyncio.gather(*self._watchers, return_exceptions=True)
        for pending in self._pending.values():  # pragma: no cover - watchers empty it
            await pending.upstream.close(CloseCode.GOING_AWAY, "gateway shutting down")
        self._pending.clear()

    async def run(
        self, stop: asyncio.Event, on_ready: Callable[[Gateway], None] | None = None
    ) -> None:
        """Serve until ``stop`` is set, then shut down cleanly (the CLI's main loop).

        Args:
            stop: Set it (from a signal handler, say) to stop the gateway.
            on_ready: Called once the gateway accepts connections.
        """
        async with self:
            if on_ready is not None:
                on_ready(self)
            await stop.wait()

    def _forward(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        transport: asyncio.BaseTransport,
    ) -> None:
        """Forward a REST request (client secrets, calls) upstream; answer on ``transport``."""
        assert isinstance(transport, asyncio.WriteTransport)
        built = build_forward(self.config, method, target, headers, body, os.environ)
        if isinstance(built, bytes):
            transport.write(built)
            transport.close()
            return
        task = asyncio.create_task(self._relay_http(built, transport, method, target))
        self._forwards.add(task)
        task.add_done_callback(self._forwards.discard)

    async def _relay_http(
        self, request: ForwardRequest, transport: asyncio.WriteTransport, method: str, target: str
    ) -> None:
        try:
            answer = await relay_http(request, self.config.connect_timeout)
        finally:
            if self._closing:
                transport.close()
        status = answer.split(b" ", 2)[1].decode("latin-1", "replace") if b" " in answer else "?"
        self._log.info("forwarded %s %s: HTTP %s", method, urlsplit(target).path, status)
        if not transport.is_closing():
            transport.write(answer)
            transport.close()

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Check the request, then open the upstream before accepting the client."""
        checked = check_request(request.path, request.headers, self.config, os.environ)
        if isinstance(checked, Response):
            path = request.path.partition("?")[0]  # not urlsplit: the target may not parse
            self._log.info("refused %s: HTTP %d", path, checked.status_code)
            return checked
        if self._closing:
            return _shutting_down()
        target = build_upstream_target(
            self.config,
            checked.model,
            checked.authorization,
            call_id=checked.call_id,
            intent=checked.intent,
        )
        try:
            upstream = await self._connect(target)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our own handshake is being cancelled: let it go
            return _shutting_down()  # aclose() cancelled the connect
        except Exception as exc:
            response = upstream_failure_response(exc, self.config.connect_timeout)
            self._log.warning(
                "upstream %s failed for model=%s: %s -> HTTP %d",
                _redact_url(target.url),
                checked.model,
                exc,
                response.status_code,
            )
            return response
        self._pending[connection] = _Pending(upstream, checked.model, target)
        watcher = asyncio.create_task(self._reap_if_orphaned(connection))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return None

    async def _connect(self, target: UpstreamTarget) -> ClientConnection:
        """Open the upstream connection as a task that :meth:`aclose` can cancel."""
        task = asyncio.create_task(self._open_upstream(target))
        self._connecting.add(task)
        try:
            return await task
        finally:
            self._connecting.discard(task)

    async def _open_upstream(self, target: UpstreamTarget) -> ClientConnection:
        return await _NoRedirectConnect(
            target.url,
            additional_headers=list(target.headers),
            open_timeout=self.config.connect_timeout,
            max_size=self.config.max_message_size,
            # The GA SDK offers no compression either; and every frame would
            # otherwise be inflated here only to be deflated again.
            compression=None,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_timeout,
            close_timeout=self.config.close_timeout,
            logger=upstream_ws_logger(),
        )

    async def _reap_if_orphaned(self, connection: ServerConnection) -> None:
        """Close the pending upstream if the client leaves before its session starts."""
        await connection.wait_closed()
        pending = self._pending.pop(connection, None)
        if pending is not None:
            await pending.upstream.close(CloseCode.GOING_AWAY, "client went away")

    async def _handle(self, connection: ServerConnection) -> None:
        """Run one session: relay, then log how it ended."""
        pending = self._pending.pop(connection, None)
        if pending is None:  # pragma: no cover - process_request always leaves one
            await connection.close(CloseCode.INTERNAL_ERROR, "no upstream for this session")
            return
        upstream = pending.upstream
        session = str(connection.id)[:8]
        self._log.info(
            "session %s start model=%s upstream=%s",
            session,
            pending.model,
            _redact_url(pending.target.url),
        )
        started = time.monotonic()
        result: RelayResult | None = None
        try:
            result = await relay(
                connection, upstream, self._log, idle_timeout=self.config.idle_timeout
            )
        finally:
            # Normally a no-op (relay closed it); after an error, this is what
            # keeps the upstream socket from outliving the session.
            await upstream.close(CloseCode.INTERNAL_ERROR, "gateway error")
            self._log_end(session, pending.model, time.monotonic() - started, result)

    def _log_end(
        self, session: str, model: str, duration: float, result: RelayResult | None
    ) -> None:
        if result is None:
            self._log.info("session %s end model=%s duration=%.3fs error", session, model, duration)
            return
        received = result.received.code if result.received is not None else "none"
        forwarded = result.forwarded[0] if result.forwarded is not None else "none"
        self._log.info(
            "session %s end model=%s duration=%.3fs frames upstream->client=%d "
            "client->upstream=%d closed_by=%s close=%s forwarded=%s",
            session,
            model,
            duration,
            result.frames_to_client,
            result.frames_to_upstream,
            result.closed_by or "both",
            received,
            forwarded,
        )


def _shutting_down() -> Response:
    return error_response(503, "server_error", "shutting_down", "The gateway is shutting down.")


def _redact_url(url: str) -> str:
    """Drop the query: some deployments put a key in it."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
