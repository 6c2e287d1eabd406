"""--allow-origin and --client-token, from the command line and from pytest."""

from __future__ import annotations

import pytest

from fakeupstream.access import CLIENT_TOKEN_ENV
from fakeupstream.cli import _access, _parser


def test_serve_and_record_take_allowed_origins() -> None:
    args = _parser().parse_args(
        ["serve", "--allow-origin", "https://a.example", "--allow-origin", "https://b.example"]
    )
    assert _access(args).allow_origins == ("https://a.example", "https://b.example")
    assert _access(args).client_token is None
    args = _parser().parse_args(["record", "--cassette", "c", "--client-token", "tok"])
    assert _access(args).client_token == "tok"


def test_the_client_token_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLIENT_TOKEN_ENV, "from-env")
    assert _access(_parser().parse_args(["record", "--cassette", "c"])).client_token == "from-env"
    monkeypatch.setenv(CLIENT_TOKEN_ENV, "")
    assert _access(_parser().parse_args(["record", "--cassette", "c"])).client_token is None


def test_the_plugin_option_and_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "fakeupstream_allow_origins =\n    https://ini.example\n"
    )
    pytester.makepyfile(
        test_origins="""
        def test_origins(fakeupstream_access, pytestconfig):
            expected = pytestconfig.getoption("expected")
            assert fakeupstream_access.allow_origins == tuple(expected.split(","))
        """,
        conftest="""
        def pytest_addoption(parser):
            parser.addoption("--expected")
        """,
    )
    pytester.runpytest(
        "-p", "no:cacheprovider", "--expected", "https://ini.example"
    ).assert_outcomes(passed=1)
    pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--expected",
        "https://cli.example",
        "--fakeupstream-allow-origin",
        "https://cli.example",
    ).assert_outcomes(passed=1)
