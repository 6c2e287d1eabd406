"""The ``fakeupstream`` command: serve, record, list, check.

Each subcommand parses its arguments and calls library code; errors the user
can fix are printed as one clear line (exit 1, or 2 for bad usage), never as a
traceback. A closed stdout (``fakeupstream list | head``) ends the command
quietly with exit 1.
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
from typing import Any

from ._version import __version__
from .access import CLIENT_TOKEN_ENV, AccessPolicy
from .cassette import valid_name
from .exceptions import CassetteError, FakeUpstreamError, RecordError
from .recordmode import RecordMode
from .replay import ReplayOptions, check_speed
from .serve.logs import cli_logging
from .serve.process import tune_for_serving
from .serve.record_relay import DEFAULT_UPSTREAM, RecordingConfig
from .serve.server import DEFAULT_BACKLOG, FakeUpstream
from .serve.tls import ServerCertificate
from .serve.workers import WorkerUpstream, parse_worker, run_workers
from .storage.file_writer import SavedCassette
from .storage.library import CassetteLibrary
from .unexpected import OnUnexpected, parse_on_unexpected

__all__ = ["RECORD_PORT", "SERVE_PORT", "main"]

SERVE_PORT = 8765
RECORD_PORT = 8766
"""Not ``serve``'s port, so a recorder and a replaying server can run side by side."""


def _speed(text: str) -> float:
    try:
        return check_speed(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number, zero or more (0: no delays, 1: real time), got {text!r}"
        ) from None


def _on_unexpected(text: str) -> OnUnexpected:
    try:
        return parse_on_unexpected(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _worker(text: str) -> tuple[int, int, Path]:
    try:
        return parse_worker(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fakeupstream",
        description="A fake OpenAI Realtime API server that replays YAML cassettes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_serve(commands)
    _add_record(commands)
    _add_list(commands)
    _add_check(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="serve cassettes on a WebSocket port")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument(
        "--port",
        type=_port,
        default=SERVE_PORT,
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
    serve.add_argument(
        "--on-unexpected",
        type=_on_unexpected,
        default=None,
        metavar="|".join(policy.value for policy in OnUnexpected),
        help="a client event the cassette did not expect: the GA session model answers it "
        "(emulate), an error event (error), or the error and close 1008 (close) "
        "(default: the cassette's on_unexpected, else emulate)",
    )
    _add_tls_options(serve)
    serve.add_argument(
        "--backlog",
        type=_positive,
        default=DEFAULT_BACKLOG,
        help="connections the kernel queues until they are accepted (default: %(default)s)",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes sharing the port (SO_REUSEPORT), to use more cores (default: 1)",
    )
    # Set by the supervisor of --workers on each worker's command line: INDEX/COUNT/DIR.
    serve.add_argument("--worker", type=_worker, default=None, help=argparse.SUPPRESS)
    _add_verbosity(serve)
    _add_access_options(serve, client_token=False)


def _add_tls_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--tls",
        action="store_true",
        help="serve wss:// and https:// with a certificate for 127.0.0.1, localhost and ::1 "
        "signed by a local CA made on first use (needs fakeupstream[tls]); "
        "prints the CA file clients must trust",
    )
    command.add_argument(
        "--tls-cert", type=Path, default=None, metavar="PEM", help="your own certificate chain"
    )
    command.add_argument(
        "--tls-key", type=Path, default=None, metavar="PEM", help="the key of --tls-cert"
    )


def _add_record(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        default=RECORD_PORT,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    record.add_argument(
        "--record-mode",
        choices=[mode.value for mode in RecordMode if mode is not RecordMode.NONE],
        default=RecordMode.ALL.value,
        help="all: replace the cassette, then append; new_episodes: append to it; "
        "once: only record it if it does not exist (default: %(default)s)",
    )
    _add_verbosity(record)
    _add_access_options(record, client_token=True)


def _add_list(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing = commands.add_parser("list", help="list cassettes with their descriptions")
    listing.add_argument(
        "--cassette-dir",
        type=Path,
        default=None,
        help="directory of cassettes (default: the bundled ones)",
    )


def _add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check",
        help="validate cassette files",
        epilog="exit status: 0 every file is valid, 1 some file is not, 2 bad usage or the "
        "openai SDK is missing (pip install 'fakeupstream[sdk]', or --no-sdk)",
    )
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


def _add_verbosity(command: argparse.ArgumentParser) -> None:
    loudness = command.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="stderr gets one line per connection by default; -v adds one per frame, "
        "-vv websockets' own debug log (keys are always masked)",
    )
    loudness.add_argument("-q", "--quiet", action="store_true", help="log errors only")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        status = _run(args)
        sys.stdout.flush()  # here, not at exit: a closed pipe is handled below
        return status
    except FakeUpstreamError as exc:
        print(f"fakeupstream: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`fakeupstream list | head`): stop quietly. Point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        with cli_logging(-1 if args.quiet else args.verbose):
            return _serve(args)
    if args.command == "record":
        with cli_logging(-1 if args.quiet else args.verbose):
            return _record(args)
    if args.command == "list":
        return _list(args)
    return _check(args)


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
    if args.workers > 1 and args.worker is None:
        return _serve_workers(args)
    options = ReplayOptions(
        speed=args.speed, fresh_ids=args.fresh_ids, on_unexpected=args.on_unexpected
    )
    listen: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "backlog": args.backlog,
        "access": _access(args),
    }
    if args.worker is None:
        fake = FakeUpstream(
            args.cassette_dir, args.cassette, replay=options, tls=_tls(args), **listen
        )
    else:
        index, count, control = args.worker
        fake = WorkerUpstream(
            args.cassette_dir,
            args.cassette,
            replay=options,
            tls=_tls(args),
            index=index,
            count=count,
            control=control,
            **listen,
        )

    def ready() -> None:
        print(f"listening on {fake.url}", flush=True)
        if fake.ca_certificate is not None:
            print(f"ca certificate: {fake.ca_certificate}", flush=True)

    tune_for_serving()  # this process only serves: collect garbage less often
    asyncio.run(_run_until_signalled(fake, ready))
    return 0


def _tls(args: argparse.Namespace) -> bool | ServerCertificate:
    """``--tls`` (the local CA) or ``--tls-cert``/``--tls-key`` (the user's pair)."""
    if (args.tls_cert is None) != (args.tls_key is None):
        raise FakeUpstreamError("--tls-cert and --tls-key go together: give both")
    if args.tls_cert is not None:
        return ServerCertificate(args.tls_cert, args.tls_key)
    return bool(args.tls)


def _serve_workers(args: argparse.Namespace) -> int:
    """Supervise ``args.workers`` worker processes serving one port."""
    if args.cassette is not None:
        CassetteLibrary(args.cassette_dir).load(args.cassette)  # fail once, not N times
    command = [sys.executable, "-m", "fakeupstream", "serve", "--host", args.host]
    command += ["--speed", repr(args.speed), "--backlog", str(args.backlog)]
    if args.cassette_dir is not None:
        command += ["--cassette-dir", str(Path(args.cassette_dir).resolve())]
    if args.cassette is not None:
        command += ["--cassette", args.cassette]
    if args.fresh_ids:
        command.append("--fresh-ids")
    if args.on_unexpected is not None:
        command += ["--on-unexpected", args.on_unexpected.value]
    if args.tls:
        command.append("--tls")
    if args.tls_cert is not None and args.tls_key is not None:
        command += ["--tls-cert", str(args.tls_cert), "--tls-key", str(args.tls_key)]
    command += ["-q"] if args.quiet else ["-v"] * args.verbose
    for origin in args.allow_origin:
        command += ["--allow-origin", origin]

    def ready(url: str) -> None:
        print(f"listening on {url}", flush=True)

    return run_workers(command, args.workers, args.host, args.port, ready)


def _record(args: argparse.Namespace) -> int:
    if not valid_name(args.cassette):
        raise FakeUpstreamError(
            f"{args.cassette!r} is not a cassette name (letters, digits, '_', '.', '-', "
            "and '/' between parts; no absolute path, no '..', no .yaml)"
        )
    mode = RecordMode(args.record_mode)
    failures: list[RecordError] = []

    def saved(result: SavedCassette) -> None:
        counts = [_plural(result.frames, "frame"), _plural(result.connections, "connection")]
        if result.exchanges:
            counts.append(_plural(result.exchanges, "HTTP exchange"))
        print(f"wrote {result.path} ({', '.join(counts)})")
        sys.stdout.flush()

    def failed(exc: RecordError) -> None:
        failures.append(exc)  # the recorder has logged it (errors show even with -q)

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
            files.extend(
                CassetteLibrary(path).path_for(name) for name in CassetteLibrary(path).names()
            )
        else:
            files.append(path)
    return files


def _check(args: argparse.Namespace) -> int:
    from .storage.check import check_cassette
    from .storage.sdkcheck import sdk_available

    if not args.no_sdk and not sdk_available():
        print(
            "fakeupstream: error: check validates events with the openai SDK, which is not "
            "installed: pip install 'fakeupstream[sdk]', or check the format only with --no-sdk",
            file=sys.stderr,
        )
        return 2
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
