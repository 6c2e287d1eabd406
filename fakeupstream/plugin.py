"""The pytest plugin: a fake OpenAI realtime upstream for the tests that ask for one.

Registered through the ``pytest11`` entry point; nothing to import or enable.

Fixtures:
    ``fakeupstream`` (function scope): the running server, its reports reset and the
        cassette of the test's ``cassette`` marker selected. After the test, client
        frames the cassette did not expect and cassette steps that never played fail
        the test with a readable diff (quietly skipped when the test already failed).
    ``fakeupstream_server`` (session scope): the same server, started once per
        session (once per xdist worker) on its own thread, so sync tests that call
        ``asyncio.run`` and async tests on any loop can both use it.
    ``fakeupstream_cassette_dir``, ``fakeupstream_speed``, ``fakeupstream_fresh_ids``
        and ``fakeupstream_record_mode`` (session scope): override points, defaulting
        to the command-line options below.
    ``fakeupstream_recording`` (session scope, ``RecordingConfig | None``): how the
        server records; ``None`` in mode ``none``. Override it in a ``conftest.py`` to
        add ``before_record`` hooks or secrets; the override can ask for the original
        by the same name and ``dataclasses.replace`` it.

Marker:
    ``@pytest.mark.cassette("name", allow_unplayed=False, allow_mismatches=False)``

Options (command line, then ini, then default; one rule for all of them):
    ``--cassette-dir DIR`` / ``fakeupstream_cassette_dir``: the cassettes (default: the
        bundled ones). A relative ini path is relative to the rootdir.
    ``--fakeupstream-speed X`` / ``fakeupstream_speed``: delay scale (default 0).
    ``--fakeupstream-fresh-ids`` / ``fakeupstream_fresh_ids``: replace recorded ids by
        fresh ones per connection (default: ids as recorded).
    ``--record-mode MODE`` / ``fakeupstream_record_mode``: ``none`` (default: replay
        only, a missing cassette fails the test and says how to record it), ``once``
        (record missing cassettes), ``new_episodes`` (append every connection to its
        cassette), ``all`` (re-record). Recording needs ``OPENAI_API_KEY`` and an
        explicit cassette directory; the fixture's connections then go through the
        recorder to the real API. ``--fakeupstream-record-mode`` is the same flag
        (the only one when pytest-recording already owns ``--record-mode``).
    ``--record-upstream URL`` / ``fakeupstream_record_upstream``: what to record
        against (default ``wss://api.openai.com/v1/realtime``).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import inspect
import os
from collections.abc import Awaitable, Callable, Generator, Iterator
from pathlib import Path

import pytest

from .access import AccessPolicy
from .exceptions import CassetteError, CassetteNotFound, FakeUpstreamError, RecordError
from .recordmode import RecordMode, parse_record_mode
from .replay import ReplayOptions, check_speed
from .report import verify
from .serve.record_relay import API_KEY_ENV, DEFAULT_UPSTREAM, RecordingConfig
from .serve.server import FakeUpstream
from .serve.threaded import ThreadedFakeUpstream

__all__ = [
    "fakeupstream",
    "fakeupstream_cassette_dir",
    "fakeupstream_fresh_ids",
    "fakeupstream_record_mode",
    "fakeupstream_recording",
    "fakeupstream_server",
    "fakeupstream_speed",
]

_IDLE_TIMEOUT = 5.0
_MARKER = "cassette"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fakeupstream", "fake OpenAI realtime upstream")
    group.addoption(
        "--cassette-dir",
        dest="fakeupstream_cassette_dir",
        default=None,
        metavar="DIR",
        help="directory of realtime cassettes (default: bundled)",
    )
    group.addoption(
        "--fakeupstream-speed",
        dest="fakeupstream_speed",
        default=None,
        metavar="X",
        help="delay scale for replay: 0 = none (default), 1 = real time",
    )
    modes = "|".join(mode.value for mode in RecordMode)
    group.addoption(
        *dict.fromkeys((_record_flag(), "--fakeupstream-record-mode")),
        dest="fakeupstream_record_mode",
        default=None,
        metavar="MODE",
        help=f"record realtime cassettes against the real API: {modes} "
        "(default: none, replay only)",
    )
    group.addoption(
        "--record-upstream",
        dest="fakeupstream_record_upstream",
        default=None,
        metavar="URL",
        help=f"realtime URL to record against (default: {DEFAULT_UPSTREAM})",
    )
    parser.addini("fakeupstream_cassette_dir", "directory of realtime cassettes", default="")
    parser.addini("fakeupstream_speed", "delay scale for realtime cassette replay", default="0")
    group.addoption(
        "--fakeupstream-fresh-ids",
        dest="fakeupstream_fresh_ids",
        action="store_true",
        default=None,
        help="replace recorded ids by fresh ones per connection",
    )
    parser.addini(
        "fakeupstream_fresh_ids", "fresh ids per replayed connection", type="bool", default=False
    )
    group.addoption(
        "--fakeupstream-allow-origin",
        dest="fakeupstream_allow_origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="also answer browser pages from ORIGIN ('*': any); repeatable",
    )
    parser.addini(
        "fakeupstream_allow_origins",
        "browser origins answered besides loopback ones",
        type="linelist",
        default=[],
    )
    parser.addini("fakeupstream_record_mode", f"realtime record mode: {modes}", default="")
    parser.addini("fakeupstream_record_upstream", "realtime URL to record against", default="")


def _record_flag() -> str:
    """``--record-mode``, unless pytest-recording (vcrpy's plugin) is installed and owns it.

    pytest checks option names only within a group, so two plugins adding the same
    flag crash argparse whatever order they load in: ask whether the other one is there.
    """
    if importlib.util.find_spec("pytest_recording") is not None:
        return "--fakeupstream-record-mode"
    return "--record-mode"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(name, *, allow_unplayed=False, allow_mismatches=False): the realtime "
        "cassette the fakeupstream fixture replays for this test",
    )
    _resolve_speed(config)  # a bad value is a usage error before any test runs
    mode = _resolve_record_mode(config)
    if mode is not RecordMode.NONE and not os.environ.get(API_KEY_ENV, "").strip():
        flag = _record_flag()
        raise pytest.UsageError(
            f"fakeupstream: {flag}={mode.value} records realtime cassettes against the "
            f"real API and needs a key: export {API_KEY_ENV}=sk-... (it is never written to a "
            f"cassette), or replay only with {flag}=none"
        )


def _resolve_record_mode(config: pytest.Config) -> RecordMode:
    raw = (
        config.getoption("fakeupstream_record_mode")
        or config.getini("fakeupstream_record_mode")
        or RecordMode.NONE.value
    )
    try:
        return parse_record_mode(str(raw))
    except ValueError as exc:
        raise pytest.UsageError(f"fakeupstream: {exc}") from None


def _resolve_speed(config: pytest.Config) -> float:
    raw = config.getoption("fakeupstream_speed") or config.getini("fakeupstream_speed") or "0"
    try:
        return check_speed(float(raw))
    except ValueError:
        raise pytest.UsageError(
            f"fakeupstream speed must be a number, zero or more (0 = no delays, 1 = real "
            f"time); got {raw!r}"
        ) from None


def _resolve_cassette_dir(config: pytest.Config) -> Path | None:
    option = config.getoption("fakeupstream_cassette_dir")
    if option:
        return Path(option).resolve()
    ini = config.getini("fakeupstream_cassette_dir")
    if ini:
        return (config.rootpath / str(ini)).resolve()
    return None


@pytest.fixture(scope="session")
def fakeupstream_cassette_dir(pytestconfig: pytest.Config) -> Path | None:
    """Session scope, ``Path | None``: where cassettes are read; ``None`` = the bundled ones."""
    return _resolve_cassette_dir(pytestconfig)


@pytest.fixture(scope="session")
def fakeupstream_speed(pytestconfig: pytest.Config) -> float:
    """Session scope, ``float``: recorded delays are multiplied by this (default 0)."""
    return _resolve_speed(pytestconfig)


@pytest.fixture(scope="session")
def fakeupstream_fresh_ids(pytestconfig: pytest.Config) -> bool:
    """Session scope, ``bool``: replace recorded ids by fresh ones per connection (default no)."""
    option = pytestconfig.getoption("fakeupstream_fresh_ids")
    return (
        bool(option) if option is not None else bool(pytestconfig.getini("fakeupstream_fresh_ids"))
    )


@pytest.fixture(scope="session")
def fakeupstream_access(pytestconfig: pytest.Config) -> AccessPolicy:
    """Session scope, :class:`~fakeupstream.access.AccessPolicy`: who may connect.

    Default: clients without an ``Origin`` and pages from loopback origins; more origins
    from ``--fakeupstream-allow-origin`` (then the ``fakeupstream_allow_origins`` ini).
    Override this fixture for a client token.
    """
    option = pytestconfig.getoption("fakeupstream_allow_origin")
    origins = option if option is not None else pytestconfig.getini("fakeupstream_allow_origins")
    return AccessPolicy(allow_origins=tuple(str(origin) for origin in origins))


@pytest.fixture(scope="session")
def fakeupstream_record_mode(pytestconfig: pytest.Config) -> RecordMode:
    """Session scope, :class:`RecordMode`: when to record (default ``none``: replay only)."""
    return _resolve_record_mode(pytestconfig)


@pytest.fixture(scope="session")
def fakeupstream_recording(
    pytestconfig: pytest.Config,
    fakeupstream_record_mode: RecordMode,
    fakeupstream_cassette_dir: Path | None,
) -> RecordingConfig | None:
    """Session scope, ``RecordingConfig | None``: how the server records (``None``: it doesn't).

    Override point for hooks and secrets; the override asks for this one by name::

        @pytest.fixture(scope="session")
        def fakeupstream_recording(fakeupstream_recording):
            if fakeupstream_recording is None:
                return None  # replay-only mode
            return dataclasses.replace(fakeupstream_recording, before_record=(my_hook,))
    """
    if fakeupstream_record_mode is RecordMode.NONE:
        return None
    if fakeupstream_cassette_dir is None:
        raise pytest.UsageError(
            f"fakeupstream: {_record_flag()}={fakeupstream_record_mode.value} writes cassettes: "
            "say where with --cassette-dir DIR (or the fakeupstream_cassette_dir ini key); "
            "recordings never go into the installed package"
        )
    upstream = (
        pytestconfig.getoption("fakeupstream_record_upstream")
        or pytestconfig.getini("fakeupstream_record_upstream")
        or DEFAULT_UPSTREAM
    )
    try:
        return RecordingConfig.from_env(fakeupstream_record_mode, upstream=str(upstream))
    except RecordError as exc:
        raise pytest.UsageError(f"fakeupstream: {exc}") from None


@pytest.fixture(scope="session")
def fakeupstream_server(
    fakeupstream_cassette_dir: Path | None,
    fakeupstream_speed: float,
    fakeupstream_recording: RecordingConfig | None,
    fakeupstream_fresh_ids: bool,
    fakeupstream_access: AccessPolicy,
) -> Iterator[ThreadedFakeUpstream]:
    """Session scope, :class:`ThreadedFakeUpstream`: one server per session or xdist worker.

    In a record mode, the cassettes the mode says are recorded through it.
    """
    if fakeupstream_cassette_dir is not None and not fakeupstream_cassette_dir.is_dir():
        raise pytest.UsageError(
            f"fakeupstream: cassette directory {fakeupstream_cassette_dir} does not exist"
        )
    server = ThreadedFakeUpstream(
        FakeUpstream(
            fakeupstream_cassette_dir,
            replay=ReplayOptions(speed=fakeupstream_speed, fresh_ids=fakeupstream_fresh_ids),
            recording=fakeupstream_recording,
            access=fakeupstream_access,
        )
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fakeupstream(
    request: pytest.FixtureRequest, fakeupstream_server: ThreadedFakeUpstream
) -> Iterator[ThreadedFakeUpstream]:
    """Function scope, :class:`ThreadedFakeUpstream`: the server, reset for this test.

    The ``cassette`` marker picks the cassette for connections that do not name one
    in their path; without the marker, connections must name one
    (``fakeupstream.cassette_url(name)``) or the test calls ``fakeupstream.use(name)``.
    """
    name, _ = _marker_options(request.node)
    fakeupstream_server.wait_idle(_IDLE_TIMEOUT)  # connections of the previous test
    fakeupstream_server.reset()
    problem = None
    try:
        fakeupstream_server.use(name)
    except CassetteNotFound as exc:
        problem = (
            f"fakeupstream: {exc}\n  to record it against the real API: "
            f"{API_KEY_ENV}=sk-... pytest {_record_flag()}=once --cassette-dir DIR "
            f"{request.node.nodeid}"
        )
    except CassetteError as exc:
        problem = f"fakeupstream: {exc}"
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    yield fakeupstream_server
    fakeupstream_server.use(None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Check the replay right after the test body, so a miss is a test *failure*."""
    server = getattr(item, "funcargs", {}).get("fakeupstream")
    if not isinstance(server, ThreadedFakeUpstream):
        return (yield)
    original = getattr(item, "obj", None)
    if inspect.iscoroutinefunction(original):
        # An async test's own loop may still be closing connections (a gateway under
        # test lives there): wait for the server to go idle *on that loop*, while it runs.
        item.obj = _then_wait_idle(original, server)  # type: ignore[attr-defined]
    try:
        result = yield  # raises (and skips the check) when the test itself failed
    finally:
        if original is not None:
            item.obj = original  # type: ignore[attr-defined]
    _verify(item, server)
    return result


def _then_wait_idle(
    test: Callable[..., Awaitable[object]], server: ThreadedFakeUpstream
) -> Callable[..., Awaitable[object]]:
    @functools.wraps(test)
    async def run(*args: object, **kwargs: object) -> object:
        result = await test(*args, **kwargs)
        await asyncio.to_thread(server.wait_idle, _IDLE_TIMEOUT)
        return result

    return run


def _marker_options(item: pytest.Item) -> tuple[str | None, dict[str, bool]]:
    """The marker's cassette name and options, checked (a misuse fails at setup)."""
    marker = item.get_closest_marker(_MARKER)
    if marker is None:
        return None, {}
    if len(marker.args) != 1 or not isinstance(marker.args[0], str):
        pytest.fail(
            f"@pytest.mark.{_MARKER} takes one cassette name, got {marker.args!r}", pytrace=False
        )
    unknown = set(marker.kwargs) - {"allow_unplayed", "allow_mismatches"}
    if unknown:
        pytest.fail(
            f"@pytest.mark.{_MARKER}: unknown option(s) {', '.join(sorted(unknown))}; "
            "expected allow_unplayed, allow_mismatches",
            pytrace=False,
        )
    return marker.args[0], {key: bool(value) for key, value in marker.kwargs.items()}


def _verify(item: pytest.Item, server: ThreadedFakeUpstream) -> None:
    _, options = _marker_options(item)
    if not server.wait_idle(_IDLE_TIMEOUT):
        pytest.fail(
            f"fakeupstream: connections still open {_IDLE_TIMEOUT:g} s after the test "
            "ended; close every client connection in the test",
            pytrace=False,
        )
    errors = server.errors()
    if errors and isinstance(errors[0], RecordError):
        # Says what was not saved and why (the leak guard's findings, masked).
        raise errors[0] from None
    if errors:
        raise FakeUpstreamError(
            f"the fake upstream failed while serving: {errors[0]!r}"
        ) from errors[0]
    verify(
        server.reports(),
        mismatches=not options.get("allow_mismatches", False),
        unplayed=not options.get("allow_unplayed", False),
    )
