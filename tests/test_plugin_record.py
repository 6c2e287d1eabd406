"""Recording through the pytest plugin, driven with pytester like users drive it."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakeupstream import bundled_cassette_dir, load_cassette
from fakeupstream.serve.threaded import ThreadedFakeUpstream

KEY = "sk-SENTINEL0123456789abcdefXYZ"

INI = """\
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""

TEST = """\
import asyncio, json
import pytest
from websockets.asyncio.client import connect

AUTH = {"Authorization": "Bearer sk-client-key-1234"}

async def exchange(url):
    async with connect(url, additional_headers=AUTH) as ws:
        created = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        updated = json.loads(await ws.recv())
        return created["type"], updated["type"]

@pytest.mark.cassette("recorded_here")
def test_session(fakeupstream):
    url = fakeupstream.url + "/v1/realtime?model=gpt-realtime"
    assert asyncio.run(exchange(url)) == ("session.created", "session.updated")
"""


@pytest.fixture
def standin() -> Iterator[ThreadedFakeUpstream]:
    with ThreadedFakeUpstream() as server:
        yield server


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(test_it=TEST)
    (pytester.path / "cassettes").mkdir()
    return pytester


def test_once_records_a_missing_cassette_and_the_next_run_replays_it(
    project: pytest.Pytester, standin: ThreadedFakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    cassettes = project.path / "cassettes"
    upstream = standin.cassette_url("session")
    result = project.runpytest(
        "--record-mode=once", f"--cassette-dir={cassettes}", f"--record-upstream={upstream}"
    )
    result.assert_outcomes(passed=1)
    cassette = load_cassette(cassettes / "recorded_here.yaml")
    assert len(cassette.timeline) == 3
    assert len(standin.reports()) == 1

    monkeypatch.delenv("OPENAI_API_KEY")
    project.runpytest(f"--cassette-dir={cassettes}").assert_outcomes(passed=1)
    assert len(standin.reports()) == 1  # replayed: the upstream saw nothing new
    assert b"sk-client-key-1234" not in (cassettes / "recorded_here.yaml").read_bytes()


def test_ini_keys_select_the_mode_and_the_upstream(
    project: pytest.Pytester, standin: ThreadedFakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    project.makeini(
        INI
        + "fakeupstream_record_mode = new_episodes\n"
        + "fakeupstream_cassette_dir = cassettes\n"
        + f"fakeupstream_record_upstream = {standin.cassette_url('session')}\n"
    )
    project.runpytest().assert_outcomes(passed=1)
    project.runpytest().assert_outcomes(passed=1)
    cassette = load_cassette(project.path / "cassettes" / "recorded_here.yaml")
    assert len(cassette.episodes) == 2
    # The command line wins over the ini file.
    project.runpytest("--record-mode=none").assert_outcomes(passed=1)
    assert len(standin.reports()) == 2


def test_a_record_mode_without_a_key_is_a_usage_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = project.runpytest("--record-mode=all", "--cassette-dir=cassettes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--record-mode=all records realtime cassettes against the real API and needs a "
            "key: export OPENAI_API_KEY=sk-...*or replay only with --record-mode=none"
        ]
    )


@pytest.mark.parametrize(
    "args", [["--record-mode=sometimes"], ["-o", "fakeupstream_record_mode=sometimes"]]
)
def test_a_bad_mode_is_a_usage_error_listing_the_modes(
    project: pytest.Pytester, args: list[str]
) -> None:
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*unknown record mode 'sometimes'; expected one of: none, once, new_episodes, all*"]
    )


def test_replay_only_fails_a_missing_cassette_and_says_how_to_record_it(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*no cassette named 'recorded_here'*; available: *session*",
            "*to record it against the real API: OPENAI_API_KEY=sk-... pytest "
            "--record-mode=once --cassette-dir DIR test_it.py::test_session*",
        ]
    )


def test_recording_needs_an_explicit_cassette_dir(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    result = project.runpytest("--record-mode=once")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*say where with --cassette-dir DIR*"])


def test_a_refused_save_fails_the_test_with_the_findings(
    project: pytest.Pytester, standin: ThreadedFakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    project.makeconftest(
        textwrap.dedent("""\
        import dataclasses
        import pytest

        def quote_a_key(direction, data):
            if isinstance(data, dict) and data.get("type") == "session.updated":
                return {**data, "note": "say sk-FAKEfakeFAKEfake0123456789 aloud"}
            return data

        @pytest.fixture(scope="session")
        def fakeupstream_recording(fakeupstream_recording):
            return dataclasses.replace(fakeupstream_recording, before_record=(quote_a_key,))
        """)
    )
    cassettes: Path = project.path / "cassettes"
    result = project.runpytest(
        "--record-mode=once",
        f"--cassette-dir={cassettes}",
        f"--record-upstream={standin.cassette_url('session')}",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*SecretLeakError: refused to write *recorded_here.yaml: it would contain secrets:*"]
    )
    assert "sk-FAKEfakeFAKEfake0123456789" not in result.stdout.str()
    assert not (cassettes / "recorded_here.yaml").exists()


def test_pytest_recording_keeps_its_record_mode_flag(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for pytest-recording (vcrpy's plugin), which owns --record-mode.
    project.makepyfile(
        pytest_recording=textwrap.dedent("""\
        def pytest_addoption(parser):
            parser.getgroup("recording").addoption("--record-mode", dest="record_mode")
        """)
    )
    project.syspathinsert()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    session = bundled_cassette_dir() / "session.yaml"
    (project.path / "cassettes" / "recorded_here.yaml").write_bytes(session.read_bytes())
    result = project.runpytest(
        "-p", "pytest_recording", "--record-mode=once", "--cassette-dir=cassettes"
    )
    result.assert_outcomes(passed=1)  # that flag is vcrpy's: ours replays (mode none)
    result = project.runpytest(
        "-p", "pytest_recording", "--fakeupstream-record-mode=once", "--cassette-dir=cassettes"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--fakeupstream-record-mode=once records realtime cassettes*"])


def test_a_test_without_a_marker_records_and_replays_its_default_cassette(
    pytester: pytest.Pytester, standin: ThreadedFakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-recording's convention: ``<cassette dir>/<module>/<test>.yaml``."""
    pytester.makeini(INI)
    pytester.makepyfile(test_chat=TEST.replace('@pytest.mark.cassette("recorded_here")\n', ""))
    cassettes = pytester.path / "cassettes"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    upstream = standin.cassette_url("session")
    result = pytester.runpytest(
        "--record-mode=once", f"--cassette-dir={cassettes}", f"--record-upstream={upstream}"
    )
    result.assert_outcomes(passed=1)
    written = sorted(p.relative_to(cassettes).as_posix() for p in cassettes.rglob("*"))
    assert written == ["test_chat", "test_chat/test_session.yaml"]  # no lock file left
    path = cassettes / "test_chat" / "test_session.yaml"
    assert path.stat().st_mode & 0o044 == 0o044  # readable by group and others, like git files
    assert len(load_cassette(path).timeline) == 3

    monkeypatch.delenv("OPENAI_API_KEY")
    pytester.runpytest(f"--cassette-dir={cassettes}").assert_outcomes(passed=1)
    assert len(standin.reports()) == 1  # replayed
