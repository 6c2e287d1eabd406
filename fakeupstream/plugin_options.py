"""The plugin's options: command-line flags and ini keys, and one resolver for each.

One precedence rule for all of them: the command line, then the ini file, then the
default. A bad value is a :class:`pytest.UsageError` that lists what is valid.
Part of the plugin (:mod:`fakeupstream.plugin` re-exports ``pytest_addoption``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from .recordmode import RecordMode, parse_record_mode
from .replay import check_speed
from .serve.record_relay import DEFAULT_UPSTREAM
from .unexpected import OnUnexpected, parse_on_unexpected

__all__ = [
    "pytest_addoption",
    "record_flag",
    "resolve_cassette_dir",
    "resolve_on_unexpected",
    "resolve_record_mode",
    "resolve_speed",
]


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
        *dict.fromkeys((record_flag(), "--fakeupstream-record-mode")),
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
        "--fakeupstream-tls",
        dest="fakeupstream_tls",
        action="store_true",
        default=None,
        help="serve wss:// and https:// with a local CA's certificate",
    )
    parser.addini("fakeupstream_tls", "serve wss:// and https://", type="bool", default=False)
    policies = "|".join(policy.value for policy in OnUnexpected)
    group.addoption(
        "--fakeupstream-on-unexpected",
        dest="fakeupstream_on_unexpected",
        default=None,
        metavar="POLICY",
        help=f"a client event the cassette did not expect: {policies} "
        "(default: the cassette's, else emulate)",
    )
    parser.addini(
        "fakeupstream_on_unexpected", f"unexpected client event policy: {policies}", default=""
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


def record_flag() -> str:
    """``--record-mode``, unless pytest-recording (vcrpy's plugin) is installed and owns it.

    pytest checks option names only within a group, so two plugins adding the same
    flag crash argparse whatever order they load in: ask whether the other one is there.
    """
    if importlib.util.find_spec("pytest_recording") is not None:
        return "--fakeupstream-record-mode"
    return "--record-mode"


def resolve_record_mode(config: pytest.Config) -> RecordMode:
    raw = (
        config.getoption("fakeupstream_record_mode")
        or config.getini("fakeupstream_record_mode")
        or RecordMode.NONE.value
    )
    try:
        return parse_record_mode(str(raw))
    except ValueError as exc:
        raise pytest.UsageError(f"fakeupstream: {exc}") from None


def resolve_on_unexpected(config: pytest.Config) -> OnUnexpected | None:
    raw = config.getoption("fakeupstream_on_unexpected") or config.getini(
        "fakeupstream_on_unexpected"
    )
    if not raw:
        return None
    try:
        return parse_on_unexpected(str(raw))
    except ValueError as exc:
        raise pytest.UsageError(f"fakeupstream: {exc}") from None


def resolve_speed(config: pytest.Config) -> float:
    raw = config.getoption("fakeupstream_speed") or config.getini("fakeupstream_speed") or "0"
    try:
        return check_speed(float(raw))
    except ValueError:
        raise pytest.UsageError(
            f"fakeupstream speed must be a number, zero or more (0 = no delays, 1 = real "
            f"time); got {raw!r}"
        ) from None


def resolve_cassette_dir(config: pytest.Config) -> Path | None:
    option = config.getoption("fakeupstream_cassette_dir")
    if option:
        return Path(option).resolve()
    ini = config.getini("fakeupstream_cassette_dir")
    if ini:
        return (config.rootpath / str(ini)).resolve()
    return None
