"""Command line: ``python -m proxy --upstream http://HOST:PORT[/prefix] ...``.

Thin on purpose: parse, build a :class:`~proxy.config.ProxyConfig`, run a
:class:`~proxy.gateway.Gateway` until SIGINT or SIGTERM. Prints
``listening on ws://HOST:PORT`` once connections are accepted, which is what
scripts and the benchmark wait for (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import ssl
import sys

from proxy.config import (
    DEFAULT_MAX_MESSAGE_SIZE,
    ConfigError,
    ProxyConfig,
    parse_upstream_header,
)
from proxy.gateway import Gateway
from proxy.logs import TRACE

__all__ = ["build_parser", "main"]

_LOG_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not in 0-65535")
    return port


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None


def _seconds_or_off(text: str) -> float | None:
    seconds = _seconds(text)
    return None if seconds == 0 else seconds


def _size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of bytes") from None
    if size < 1:
        raise argparse.ArgumentTypeError(f"{size} is not a positive number of bytes")
    return size


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (public so the docs and tests can show its help)."""
    parser = argparse.ArgumentParser(
        prog="python -m proxy",
        description="Realtime gateway: serves ws://HOST:PORT/v1/realtime?model=M and relays "
        "each session to UPSTREAM/v1/realtime.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: %(default)s)")
    parser.add_argument(
        "--port", type=_port, default=8000, help="port, 0 for a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--upstream",
        required=True,
        metavar="URL",
        help="upstream base URL, http(s)://HOST[:PORT][/prefix]; /v1/realtime is appended",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="environment variable holding the key used when a client sends no Authorization",
    )
    parser.add_argument(
        "--upstream-header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra header sent upstream (repeatable); none by default",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="upstream connect + upgrade timeout, then HTTP 504 (default: %(default)s)",
    )
    parser.add_argument(
        "--ping-interval",
        type=_seconds_or_off,
        default=20.0,
        metavar="SECONDS",
        help="keepalive ping interval on both hops, 0 for none (default: %(default)s)",
    )
    parser.add_argument(
        "--ping-timeout",
        type=_seconds_or_off,
        default=20.0,
        metavar="SECONDS",
        help="close a hop (1011) whose ping goes unanswered this long, 0 to wait forever "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_seconds_or_off,
        default=None,
        metavar="SECONDS",
        help="close a session in which no frame has passed either way this long; the "
        "client gets 1011 (default: off)",
    )
    parser.add_argument(
        "--close-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="wait this long for a peer to finish closing, then drop the TCP connection "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="PEM",
        help="serve wss:// with this certificate chain (with --tls-key)",
    )
    parser.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    parser.add_argument(
        "--max-message-size",
        type=_size,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        metavar="BYTES",
        help="largest message relayed either way; a larger one closes with 1009 "
        "(default: %(default)s, 16 MiB)",
    )
    parser.add_argument(
        "--log-level", choices=list(_LOG_LEVELS), default="info", help="(default: %(default)s)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the gateway until SIGINT/SIGTERM.

    Returns:
        0 after a clean shutdown, 1 if the port cannot be bound, 2 for a usage
        error (after printing the usage; never a traceback).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        config = ProxyConfig(
            upstream=args.upstream,
            api_key_env=args.api_key_env,
            upstream_headers=tuple(parse_upstream_header(h) for h in args.upstream_header),
            connect_timeout=args.connect_timeout,
            ping_interval=args.ping_interval,
            ping_timeout=args.ping_timeout,
            idle_timeout=args.idle_timeout,
            close_timeout=args.close_timeout,
            max_message_size=args.max_message_size,
        )
        tls = _tls_context(args.tls_cert, args.tls_key)
    except ConfigError as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2

    logging.basicConfig(
        level=_LOG_LEVELS[args.log_level],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if config.api_key_env and not os.environ.get(config.api_key_env):
        logging.getLogger("proxy").warning(
            "environment variable %s is not set: clients without Authorization get 401",
            config.api_key_env,
        )
    try:
        asyncio.run(_serve(config, args.host, args.port, tls))
    except OSError as exc:
        print(f"{parser.prog}: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def _tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The server context for ``--tls-cert``/``--tls-key``, or ``None`` for plain ``ws://``."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("--tls-cert and --tls-key go together: give both")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use TLS certificate {cert} with key {key}: {exc}") from None
    return context


async def _serve(
    config: ProxyConfig, host: str, port: int, tls: ssl.SSLContext | None = None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Only the main thread may install handlers; elsewhere (embedding)
        # the caller stops the loop itself.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)

    def announce(gateway: Gateway) -> None:
        print(f"listening on {gateway.url}", flush=True)

    try:
        await Gateway(config, host, port, tls=tls).run(stop, on_ready=announce)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


if __name__ == "__main__":
    sys.exit(main())
