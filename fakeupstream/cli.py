"""The ``fakeupstream`` command: serve, record, list, check.

Each subcommand parses its arguments and calls library code; errors the user
can fix are printed as one clear line (exit 1, or 2 for bad usage), never as a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ._version import __version__
from .access import CLIENT_TOKEN_ENV, AccessPolicy
from .cassette import valid_name
from .exceptions import CassetteError, FakeUpstreamError, RecordError
from .recordmode import RecordMode
from .replay import ReplayOptions, check_speed
from .serve.record_relay import DEFAULT_UPSTREAM, RecordingConfig
from .serve.server import FakeUpstream
from .storage.file_writer import SavedCassette
from .storage.library import SUFFIX, CassetteLibrary

__all__ = ["main"]


def _speed(text: str) -> float:
    try:
        return check_speed(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number, zero or more (0: no delays, 1: real time), got {text!r}"
        ) from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fakeupstream",
        description="A fake OpenAI Realtime API server that replays YAML cassettes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve cassettes on a WebSocket port")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument(
        "--port",
        type=_port,
        default=8765,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    serve.add_argument(
        "--cassette-dir",
        type=Path,
        default=None,
        help="directory of cassettes (default: the bundled ones)",
    )
    serve.add_argument(
        "--cassette", default=None, help="cassette for connections that do not name one"
    )
    serve.add_argument(
        "--fresh-ids",
        action="store_true",
        help="replace recorded ids (sess_, resp_, item_, ...) by fresh ones per connection",
    )
    serve.add_argument(
        "--speed",
        type=_speed,
        default=0.0,
        help="delay scale: 0 = no delays, 1 = real time (default: %(default)s)",
    )
    serve.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    _add_access_options(serve, client_token=False)

    record = commands.add_parser(
        "record",
        help="record cassettes against the real API (needs OPENAI_API_KEY)",
        description="Relay realtime connections to the real API and save them as a cassette. "
        "The key comes from OPENAI_API_KEY and is never written to a file.",
    )
    record.add_argument(
        "--cassette", required=True, help="cassette for connections that do not name one"
    )
    record.add_argument(
        "--cassette-dir",
        type=Path,
        default=Path("cassettes"),
        help="where cassettes are written (default: %(default)s)",
    )
    record.add_argument(
        "--upstream",
        default=DEFAULT_UPSTREAM,
        help="realtime URL to record against (default: %(default)s)",
    )
    record.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    record.add_argument(
        "--port",
        type=_port,
        default=8765,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    record.add_argument(
        "--record-mode",
        choices=[mode.value for mode in RecordMode if mode is not RecordMode.NONE],
        default=RecordMode.ALL.value,
        help="all: replace the cassette, then append; new_episodes: append to it; "
        "once: only record it if it does not exist (default: %(default)s)",
    )
    record.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    _add_access_options(record, client_token=True)

    listing = commands.add_parser("list", help="list cassettes with their descriptions")
    listing.add_argument(
        "--cassette-dir",
        type=Path,
        default=None,
        help="directory of cassettes (default: the bundled ones)",
    )

    check = commands.add_parser("check", help="validate cassette files")
    check.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="cassette files or directories (default: the bundled cassettes)",
    )
    check.add_argument(
        "--no-sdk",
        action="store_true",
        help="skip validating events against the openai SDK's types",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "record":
            return _record(args)
        if args.command == "list":
            return _list(args)
        return _check(args)
    except FakeUpstreamError as exc:
        print(f"fakeupstream: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _add_access_options(parser: argparse.ArgumentParser, *, client_token: bool) -> None:
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also answer browser pages from ORIGIN (e.g. https://app.example; '*': any); "
        "by default only loopback origins and clients that send no Origin (repeatable)",
    )
    if client_token:
        parser.add_argument(
            "--client-token",
            default=os.environ.get(CLIENT_TOKEN_ENV) or None,
            metavar="TOKEN",
            help="relay only clients that send TOKEN in the X-FakeUpstream-Token header or "
            f"the fakeupstream_token query parameter (default: ${CLIENT_TOKEN_ENV}, if set)",
        )


def _access(args: argparse.Namespace) -> AccessPolicy:
    return AccessPolicy(
        allow_origins=tuple(args.allow_origin),
        client_token=getattr(args, "client_token", None) or None,
    )


def _serve(args: argparse.Namespace) -> int:
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
    fake = FakeUpstream(
        args.cassette_dir,
        args.cassette,
        replay=ReplayOptions(speed=args.speed, fresh_ids=args.fresh_ids),
        host=args.host,
        port=args.port,
        access=_access(args),
    )

    def ready() -> None:
        print(f"listening on {fake.url}", flush=True)

    asyncio.run(_run_until_signalled(fake, ready))
    return 0


def _record(args: argparse.Namespace) -> int:
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
    if not valid_name(args.cassette):
        raise FakeUpstreamError(
            f"{args.cassette!r} is not a cassette name (letters, digits, '_', '.', '-'; "
            "no path, no .yaml)"
        )
    mode = RecordMode(args.record_mode)
    failures: list[RecordError] = []

    def saved(result: SavedCassette) -> None:
        frames = _plural(result.frames, "frame")
        print(f"wrote {result.path} ({frames}, {_plural(result.connections, 'connection')})")
        sys.stdout.flush()

    def failed(exc: RecordError) -> None:
        failures.append(exc)
        print(f"fakeupstream: error: {exc}", file=sys.stderr, flush=True)

    config = RecordingConfig.from_env(mode, upstream=args.upstream, on_saved=saved, on_error=failed)
    fake = FakeUpstream(
        args.cassette_dir,
        args.cassette,
        host=args.host,
        port=args.port,
        recording=config,
        access=_access(args),
    )
    recording = fake.records(args.cassette)

    def ready() -> None:
        what = "recording" if recording else f"replaying (it exists; mode {mode.value})"
        print(
            f"{what} cassette {args.cassette}: point your client at "
            f"{fake.url}/v1/realtime?model=gpt-realtime "
            f"(OpenAI SDK: base_url={fake.http_url}/v1)",
            flush=True,
        )

    asyncio.run(_run_until_signalled(fake, ready))
    return 1 if failures else 0


async def _run_until_signalled(fake: FakeUpstream, ready: Callable[[], None]) -> None:
    """Start ``fake``, call ``ready``, and serve until SIGINT or SIGTERM; then stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await fake.start()
    except OSError as exc:
        raise FakeUpstreamError(
            f"cannot listen on {fake.host}:{fake.port}: {exc.strerror or exc}"
        ) from None
    ready()
    try:
        await stop.wait()
    finally:
        await fake.stop()


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _list(args: argparse.Namespace) -> int:
    library = CassetteLibrary(args.cassette_dir)
    names = library.names()
    if not names:
        print(f"no cassettes in {library.directory}", file=sys.stderr)
        return 1
    width = max(len(name) for name in names)
    for name in names:
        try:
            description = library.load(name).description
        except CassetteError as exc:
            description = f"<invalid: {exc.problem}>"
        print(f"{name:<{width}}  {description}".rstrip())
    return 0


def _cassette_files(paths: Sequence[Path]) -> list[Path]:
    if not paths:
        return [CassetteLibrary().path_for(name) for name in CassetteLibrary().names()]
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.glob("*" + SUFFIX)))
        else:
            files.append(path)
    return files


def _check(args: argparse.Namespace) -> int:
    from .storage.check import check_cassette

    files = _cassette_files(args.paths)
    if not files:
        print("fakeupstream: error: no cassette files to check", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        problems = check_cassette(path, sdk=not args.no_sdk)
        if problems:
            failed += 1
            for problem in problems:
                print(problem, file=sys.stderr)
        else:
            print(f"ok  {path}")
    print(f"{len(files) - failed} ok, {failed} failed")
    return 1 if failed else 0
