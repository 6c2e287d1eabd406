"""The pytest plugin: a fake OpenAI realtime upstream for the tests that ask for one.

Registered through the ``pytest11`` entry point; nothing to import or enable.

Fixtures:
    ``fakeupstream`` (function scope): the running server, its reports reset and the
        cassette of the test's ``cassette`` marker (else its default, ``<module>/<test>``)
        selected. After the test, client frames the cassette did not expect and cassette
        steps that never played fail the test with a readable diff (quietly skipped when
        the test already failed).
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
    ``@pytest.mark.cassette("name", allow_unplayed=False, allow_mismatches=False,
    on_unexpected=None)``; ``on_unexpected`` sets the policy for this test only.
    ``@pytest.mark.fault("kind", count=1, **params)`` (repeatable): arm a fault for the
        test's first ``count`` connections (see docs/faults.md); so does the fixture's
        ``fakeupstream.fault(kind, ...)``. Faults never outlive the test.

Which cassette a connection replays, first match wins (docs/pytest-plugin.md says the same):
    1. the one its path names (``fakeupstream.cassette_url(name)``);
    2. the one the test selected with ``fakeupstream.use(name)``;
    3. the marker's;
    4. the test's default, ``<module>/<test>`` under the cassette directory
       (pytest-recording's convention; see :mod:`fakeupstream.naming`), selected when
       it exists or the record mode records it. When it does not, a connection that
       names no cassette is refused, and the test's failure says which file was looked
       for and how to record it.

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
    ``--fakeupstream-tls`` / ``fakeupstream_tls``: serve ``wss://`` and ``https://`` with
        the local CA's certificate (needs ``fakeupstream[tls]``); clients trust
        ``fakeupstream.ca_certificate`` (default: plain ``ws://``).
    ``--fakeupstream-on-unexpected POLICY`` / ``fakeupstream_on_unexpected``: what a
        client event the cassette did not expect gets: ``emulate`` (the GA session
        model answers it), ``error`` or ``close``. The marker's ``on_unexpected``
        wins over both; without any, each cassette's own ``on_unexpected`` applies,
        else ``emulate``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import os
from collections.abc import Awaitable, Callable, Generator, Iterator
from pathlib import Path

import pytest

from .access import AccessPolicy
from .exceptions import (
    CassetteError,
    CassetteNotFound,
    FakeUpstreamError,
    FaultError,
    RecordError,
    ReplayFailure,
)
from .naming import default_cassette_name
from .plugin_options import (
    pytest_addoption,  # noqa: F401 - a hook: pytest finds it by name on this module
    record_flag,
    resolve_cassette_dir,
    resolve_on_unexpected,
    resolve_record_mode,
    resolve_speed,
)
from .recordmode import RecordMode
from .replay import ReplayOptions
from .report import ConnectionReport, Outcome, verify
from .serve.record_relay import API_KEY_ENV, DEFAULT_UPSTREAM, RecordingConfig
from .serve.server import FakeUpstream
from .serve.threaded import ThreadedFakeUpstream
from .unexpected import OnUnexpected, parse_on_unexpected

__all__ = [
    "fakeupstream",
    "fakeupstream_cassette_dir",
    "fakeupstream_fresh_ids",
    "fakeupstream_on_unexpected",
    "fakeupstream_record_mode",
    "fakeupstream_recording",
    "fakeupstream_server",
    "fakeupstream_speed",
    "fakeupstream_tls",
]

_IDLE_TIMEOUT = 5.0
_MARKER = "cassette"
_MISSING_DEFAULT = pytest.StashKey[str]()
"""What to tell a test whose default cassette does not exist, if it connects without one."""
_FAULT_MARKER = "fault"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(name, *, allow_unplayed=False, allow_mismatches=False, "
        "on_unexpected=None): the realtime cassette the fakeupstream fixture replays for "
        "this test, and its unexpected-event policy (emulate, error or close)",
    )
    config.addinivalue_line(
        "markers",
        f"{_FAULT_MARKER}(kind, *, count=1, **params): a fault the fakeupstream fixture "
        "injects into the test's next connections (repeatable; see docs/faults.md)",
    )
    resolve_speed(config)  # a bad value is a usage error before any test runs
    resolve_on_unexpected(config)
    mode = resolve_record_mode(config)
    if mode is not RecordMode.NONE and not os.environ.get(API_KEY_ENV, "").strip():
        flag = record_flag()
        raise pytest.UsageError(
            f"fakeupstream: {flag}={mode.value} records realtime cassettes against the "
            f"real API and needs a key: export {API_KEY_ENV}=sk-... (it is never written to a "
            f"cassette), or replay only with {flag}=none"
        )


@pytest.fixture(scope="session")
def fakeupstream_cassette_dir(pytestconfig: pytest.Config) -> Path | None:
    """Session scope, ``Path | None``: where cassettes are read; ``None`` = the bundled ones."""
    return resolve_cassette_dir(pytestconfig)


@pytest.fixture(scope="session")
def fakeupstream_speed(pytestconfig: pytest.Config) -> float:
    """Session scope, ``float``: recorded delays are multiplied by this (default 0)."""
    return resolve_speed(pytestconfig)


@pytest.fixture(scope="session")
def fakeupstream_fresh_ids(pytestconfig: pytest.Config) -> bool:
    """Session scope, ``bool``: replace recorded ids by fresh ones per connection (default no)."""
    option = pytestconfig.getoption("fakeupstream_fresh_ids")
    return (
        bool(option) if option is not None else bool(pytestconfig.getini("fakeupstream_fresh_ids"))
    )


@pytest.fixture(scope="session")
def fakeupstream_tls(pytestconfig: pytest.Config) -> bool:
    """Session scope, ``bool``: serve ``wss://`` with the local CA (default no)."""
    option = pytestconfig.getoption("fakeupstream_tls")
    return bool(option) if option is not None else bool(pytestconfig.getini("fakeupstream_tls"))


@pytest.fixture(scope="session")
def fakeupstream_on_unexpected(pytestconfig: pytest.Config) -> OnUnexpected | None:
    """Session scope, ``OnUnexpected | None``: the unexpected-event policy (``None``: each
    cassette's own, else ``emulate``)."""
    return resolve_on_unexpected(pytestconfig)


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
    return resolve_record_mode(pytestconfig)


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
            f"fakeupstream: {record_flag()}={fakeupstream_record_mode.value} writes cassettes: "
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
    fakeupstream_tls: bool,
    fakeupstream_on_unexpected: OnUnexpected | None,
    fakeupstream_access: AccessPolicy,
) -> Iterator[ThreadedFakeUpstream]:
    """Session scope, :class:`ThreadedFakeUpstream`: one server per session or xdist worker.

    In a record mode, the cassettes the mode says are recorded through it.
    """
    if fakeupstream_recording is not None and fakeupstream_cassette_dir is not None:
        fakeupstream_cassette_dir.mkdir(parents=True, exist_ok=True)  # recordings go there
    if fakeupstream_cassette_dir is not None and not fakeupstream_cassette_dir.is_dir():
        raise pytest.UsageError(
            f"fakeupstream: cassette directory {fakeupstream_cassette_dir} does not exist"
        )
    try:
        fake = FakeUpstream(
            fakeupstream_cassette_dir,
            replay=ReplayOptions(
                speed=fakeupstream_speed,
                fresh_ids=fakeupstream_fresh_ids,
                on_unexpected=fakeupstream_on_unexpected,
            ),
            recording=fakeupstream_recording,
            tls=fakeupstream_tls,
            access=fakeupstream_access,
        )
    except FakeUpstreamError as exc:
        raise pytest.UsageError(f"fakeupstream: {exc}") from None
    server = ThreadedFakeUpstream(fake)
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
    in their path; without the marker, the test's default cassette
    (``<module>/<test>``) does, if it exists or is recorded in this run.
    """
    name, _ = _marker_options(request.node)
    policy = _marker_policy(request.node)
    fakeupstream_server.wait_idle(_IDLE_TIMEOUT)  # connections of the previous test
    fakeupstream_server.reset()
    if name is None:
        _use_default(request, fakeupstream_server)
    else:
        _use_marked(request, name, fakeupstream_server)
    _arm_marked_faults(request.node, fakeupstream_server)
    options = fakeupstream_server.server.options
    if policy is not None:  # read by the server thread when a connection opens
        fakeupstream_server.server.options = dataclasses.replace(options, on_unexpected=policy)
    try:
        yield fakeupstream_server
    finally:
        fakeupstream_server.server.options = options
        fakeupstream_server.disarm_faults()
        fakeupstream_server.use(None)


def _use_marked(request: pytest.FixtureRequest, name: str, server: ThreadedFakeUpstream) -> None:
    """Select the marker's cassette; a missing or malformed one fails the test at setup."""
    problem = None
    try:
        server.use(name)
    except CassetteNotFound as exc:
        problem = (
            f"fakeupstream: {exc}\n  to record it against the real API: "
            f"{API_KEY_ENV}=sk-... pytest {record_flag()}=once --cassette-dir DIR "
            f"{request.node.nodeid}"
        )
    except CassetteError as exc:
        problem = f"fakeupstream: {exc}"
    if problem is not None:
        pytest.fail(problem, pytrace=False)


def _arm_marked_faults(item: pytest.Item, server: ThreadedFakeUpstream) -> None:
    """Arm the faults of the test's ``fault`` markers, in order (a bad one fails setup)."""
    for marker in reversed(list(item.iter_markers(_FAULT_MARKER))):  # closest last
        if len(marker.args) != 1 or not isinstance(marker.args[0], str):
            pytest.fail(
                f"@pytest.mark.{_FAULT_MARKER} takes one fault kind, got {marker.args!r}",
                pytrace=False,
            )
        try:
            server.fault(marker.args[0], **marker.kwargs)
        except (FaultError, TypeError) as exc:
            pytest.fail(f"@pytest.mark.{_FAULT_MARKER}: {exc}", pytrace=False)


def _use_default(request: pytest.FixtureRequest, server: ThreadedFakeUpstream) -> None:
    """Select the test's default cassette, or remember why it cannot be."""
    item = request.node
    cls = getattr(item, "cls", None)
    name = default_cassette_name(item.path.stem, item.name, None if cls is None else cls.__name__)
    try:
        server.use(name)
    except CassetteNotFound:
        directory = server.server.library.directory
        configured = resolve_cassette_dir(request.config)
        where = server.server.library.path_for(name)
        if configured is None:
            where_note = " (the bundled cassettes: give your own with --cassette-dir DIR)"
        else:
            where_note = ""
        item.stash[_MISSING_DEFAULT] = (
            f"fakeupstream: this test names no cassette, and its default one does not "
            f"exist: {where}{where_note}\n"
            f"  to record it against the real API: {API_KEY_ENV}=sk-... pytest "
            f"{record_flag()}=once --cassette-dir {configured or 'DIR'} {item.nodeid}\n"
            f'  or name an existing one: @pytest.mark.{_MARKER}("name") (in {directory})'
        )
    except CassetteError as exc:
        pytest.fail(f"fakeupstream: {exc}", pytrace=False)


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
    explained = None
    try:
        result = yield  # raises (and skips the check) when the test itself failed
    except Exception as exc:
        explained = _explain_missing_default(item, server, exc) or _explain_blocked(exc, server)
        if explained is None:
            raise
    finally:
        if original is not None:
            item.obj = original  # type: ignore[attr-defined]
    if explained is not None:  # raised here, not in `except`: no "During handling of..."
        pytest.fail(explained, pytrace=False)
    _verify(item, server)
    return result


def _explain_blocked(exc: BaseException, server: ThreadedFakeUpstream) -> str | None:
    """Say so when a network-blocking plugin refused the connection to the fake itself.

    pytest-recording's ``--block-network`` raises ``RuntimeError("Network is disabled ...")``
    from ``socket.connect`` for every host not in ``--allowed-hosts``, loopback included;
    pytest-socket raises ``SocketBlockedError`` unless ``--allow-hosts`` lets it through.
    A client library may wrap either, so the whole chain of causes is searched. Only a
    refusal that names the fake's host counts (pytest-recording before 0.13 names none:
    then only when no connection reached the fake).
    """
    host = server.server.host
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        text = str(cause)
        ours = host in text if "host" in text else not server.reports()
        if isinstance(cause, RuntimeError) and text.startswith("Network is disabled") and ours:
            return (
                f"fakeupstream: pytest-recording's network blocking refused the connection "
                f"to the fake upstream on {host}: allow it with --allowed-hosts={host} (or "
                f'allowed_hosts=["{host}"] in @pytest.mark.block_network or vcr_config)'
            )
        kind = type(cause).__name__
        if kind.startswith("Socket") and kind.endswith("BlockedError") and ours:
            return (
                f"fakeupstream: pytest-socket refused the connection to the fake upstream on "
                f"{host}: allow it with --allow-hosts={host}"
            )
        cause = cause.__cause__ or cause.__context__
    return None


def _explain_missing_default(
    item: pytest.Item, server: ThreadedFakeUpstream, exc: Exception
) -> str | None:
    """Replace a bare "HTTP 404" by what was missing, when the default cassette was."""
    missing = item.stash.get(_MISSING_DEFAULT, None)
    if missing is None:
        return None
    refused = [r for r in server.reports() if r.cassette is None and r.outcome is Outcome.REFUSED]
    if not refused:
        return None
    return (
        f"{missing}\n  connection {refused[0].id} was refused: no cassette selected "
        f"(HTTP 404 no_cassette); the test then failed with {type(exc).__name__}: {exc}"
    )


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
    unknown = set(marker.kwargs) - {"allow_unplayed", "allow_mismatches", "on_unexpected"}
    if unknown:
        pytest.fail(
            f"@pytest.mark.{_MARKER}: unknown option(s) {', '.join(sorted(unknown))}; "
            "expected allow_unplayed, allow_mismatches, on_unexpected",
            pytrace=False,
        )
    return marker.args[0], {
        key: bool(value) for key, value in marker.kwargs.items() if key != "on_unexpected"
    }


def _marker_policy(item: pytest.Item) -> OnUnexpected | None:
    """The marker's ``on_unexpected`` option, checked (a misuse fails at setup)."""
    marker = item.get_closest_marker(_MARKER)
    raw = None if marker is None else marker.kwargs.get("on_unexpected")
    if raw is None:
        return None
    try:
        return parse_on_unexpected(str(raw))
    except ValueError as exc:
        pytest.fail(f"@pytest.mark.{_MARKER}: {exc}", pytrace=False)


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
        pytest.fail(f"{type(errors[0]).__name__}: {errors[0]}", pytrace=False)
    if errors:
        raise FakeUpstreamError(
            f"the fake upstream failed while serving: {errors[0]!r}"
        ) from errors[0]
    reports = server.reports()
    failure = None
    try:
        verify(
            reports,
            mismatches=not options.get("allow_mismatches", False),
            unplayed=not options.get("allow_unplayed", False),
        )
    except ReplayFailure as exc:
        failure = _replay_failure(exc, reports, server)
    if failure is not None:  # the diff is the whole story: no plugin frames before it
        pytest.fail(failure, pytrace=False)


def _replay_failure(
    exc: ReplayFailure, reports: list[ConnectionReport], server: ThreadedFakeUpstream
) -> str:
    """The failure's text: the diff, then the file of each cassette it talks about."""
    named = dict.fromkeys(
        r.cassette for r in reports if r.cassette is not None and (r.mismatches or r.unplayed)
    )
    files = []
    for name in named:
        try:
            files.append(f"  cassette {name!r}: {server.server.library.path_for(name)}")
        except CassetteNotFound:  # pragma: no cover - a played cassette has a valid name
            continue
    return "\n".join([f"{type(exc).__name__}: {exc}", *files])
