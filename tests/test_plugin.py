"""The pytest plugin, driven the way users drive it: through pytester runs."""

from __future__ import annotations

import textwrap

import pytest

INI = """\
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""

CLIENT = """\
import asyncio, json
import pytest
from websockets.asyncio.client import connect

AUTH = {"Authorization": "Bearer sk-test"}

async def session_update(url, modalities=("text",)):
    async with connect(url, additional_headers=AUTH) as ws:
        created = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "session.update",
                                  "session": {"type": "realtime",
                                              "output_modalities": list(modalities)}}))
        return created, json.loads(await ws.recv())
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(client=CLIENT)
    return pytester


def test_marker_and_fixture_in_sync_and_async_tests(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import asyncio
        import pytest
        from client import session_update

        @pytest.mark.cassette("session")
        def test_sync(fakeupstream):
            url = fakeupstream.url + "/v1/realtime?model=gpt-realtime"
            created, updated = asyncio.run(session_update(url))
            assert created["type"] == "session.created"
            assert updated["session"]["output_modalities"] == ["text"]

        @pytest.mark.asyncio
        @pytest.mark.cassette("session")
        async def test_async(fakeupstream):
            url = fakeupstream.url + "/v1/realtime?model=gpt-realtime"
            created, updated = await session_update(url)
            assert updated["type"] == "session.updated"

        @pytest.mark.asyncio
        async def test_cassette_by_path(fakeupstream):
            base = fakeupstream.cassette_url("session").replace("http", "ws")
            url = base + "/v1/realtime?model=m"
            created, updated = await session_update(url)
            assert updated["type"] == "session.updated"
        """)
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_a_mismatch_fails_the_test_with_a_readable_diff(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import pytest, json
        from websockets.asyncio.client import connect

        @pytest.mark.asyncio
        @pytest.mark.cassette("session")
        async def test_wrong_event(fakeupstream):
            url = fakeupstream.url + "/v1/realtime?model=gpt-realtime"
            async with connect(url, additional_headers={"Authorization": "Bearer k"}) as ws:
                await ws.recv()
                await ws.send(json.dumps({"type": "response.create"}))
                error = json.loads(await ws.recv())
                assert error["error"]["code"] == "unexpected_client_event"
        """)
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*MismatchError: the client did not send what the cassette expected:",
            "*connection 1 (cassette 'session', /v1/realtime?model=gpt-realtime):",
            "*unexpected client frame at step 1 (line *):",
            "*type: expected 'session.update', got 'response.create'",
        ]
    )


def test_unplayed_steps_fail_unless_allowed(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import pytest
        from websockets.asyncio.client import connect

        async def connect_only(fake):
            url = fake.url + "/v1/realtime?model=gpt-realtime"
            async with connect(url, additional_headers={"Authorization": "Bearer k"}) as ws:
                await ws.recv()

        @pytest.mark.asyncio
        @pytest.mark.cassette("session")
        async def test_strict(fakeupstream):
            await connect_only(fakeupstream)

        @pytest.mark.asyncio
        @pytest.mark.cassette("session", allow_unplayed=True)
        async def test_relaxed(fakeupstream):
            await connect_only(fakeupstream)
        """)
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*UnplayedError: the cassette was not played to the end:",
            "*step 1 (line *): client 'session.update' never sent by the client",
            "*step 2 (line *): server 'session.updated' never played",
        ]
    )


def test_a_test_that_already_failed_reports_only_its_own_failure(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import pytest

        @pytest.mark.cassette("session")
        def test_fails(fakeupstream):
            assert 1 == 2, "the test's own failure"
        """)
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the test's own failure*"])
    result.stdout.no_fnmatch_line("*UnplayedError*")


def test_unknown_cassette_and_bad_marker_usage(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import pytest

        @pytest.mark.cassette("nope")
        def test_unknown(fakeupstream):
            pass

        @pytest.mark.cassette("session", allow_everything=True)
        def test_bad_option(fakeupstream):
            pass
        """)
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*no cassette named 'nope'*available: audio_roundtrip*",
            "*unknown option(s) allow_everything; "
            "expected allow_unplayed, allow_mismatches, on_unexpected",
        ]
    )
    result.stdout.no_fnmatch_line("*During handling*")


def test_cassette_dir_from_the_command_line_or_ini(project: pytest.Pytester) -> None:
    cassettes = project.mkdir("my_cassettes")
    (cassettes / "mine.yaml").write_text(
        "version: 1\ndescription: mine\ntimeline:\n"
        "  - server: {type: session.created, event_id: e, session: {}}\n"
    )
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import pytest, json
        from websockets.asyncio.client import connect

        @pytest.mark.asyncio
        @pytest.mark.cassette("mine")
        async def test_mine(fakeupstream):
            url = fakeupstream.url + "/v1/realtime?model=m"
            async with connect(url, additional_headers={"Authorization": "Bearer k"}) as ws:
                assert json.loads(await ws.recv())["event_id"] == "e"
        """)
    )
    project.runpytest("-p", "no:cacheprovider", "--cassette-dir", str(cassettes)).assert_outcomes(
        passed=1
    )
    project.makeini(INI + "fakeupstream_cassette_dir = my_cassettes\n")
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_bad_speed_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_it="def test_nothing():\n    pass\n")
    result = project.runpytest("-p", "no:cacheprovider", "--fakeupstream-speed", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*fakeupstream speed must be a number*got 'fast'*"])


def test_each_xdist_worker_gets_its_own_server(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import os, asyncio, pathlib, pytest
        from client import session_update

        @pytest.mark.parametrize("n", range(4))
        @pytest.mark.cassette("session")
        def test_parallel(fakeupstream, n):
            url = fakeupstream.url + "/v1/realtime?model=gpt-realtime"
            created, updated = asyncio.run(session_update(url))
            assert updated["type"] == "session.updated"
            assert len(fakeupstream.reports()) == 1
            worker = os.environ["PYTEST_XDIST_WORKER"]
            markers = pathlib.Path(__file__).parent / "markers"
            markers.mkdir(exist_ok=True)
            (markers / f"{worker}-{fakeupstream.port}").touch()
        """)
    )
    result = project.runpytest_subprocess("-p", "xdist", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    names = [path.name.split("-") for path in (project.path / "markers").iterdir()]
    workers = {worker for worker, _ in names}
    ports = {port for _, port in names}
    assert len(workers) == len(ports) == 2


def test_fresh_ids_from_the_ini(project: pytest.Pytester) -> None:
    project.makeini(INI + "fakeupstream_fresh_ids = true\n")
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import asyncio
        import pytest
        from client import session_update

        @pytest.mark.cassette("session")
        def test_ids(fakeupstream):
            url = fakeupstream.url + "/v1/realtime?model=gpt-realtime"
            first, _ = asyncio.run(session_update(url))
            second, _ = asyncio.run(session_update(url))
            recorded = "sess_DAk0rJiOhnZREAl4rzfYc"
            assert first["session"]["id"].startswith("sess_")
            assert recorded not in (first["session"]["id"], second["session"]["id"])
            assert first["session"]["id"] != second["session"]["id"]
        """)
    )
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_mismatch_failure_starts_with_the_diff_and_shows_no_plugin_source(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import asyncio
        import pytest
        from websockets.asyncio.client import connect

        async def connect_only(url):
            async with connect(url, additional_headers={"Authorization": "Bearer k"}) as ws:
                await ws.recv()

        @pytest.mark.cassette("session")
        def test_audio_instead(fakeupstream):
            asyncio.run(connect_only(fakeupstream.url + "/v1/realtime?model=gpt-realtime"))
        """)
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.lines
    header = next(i for i, line in enumerate(out) if "_ test_audio_instead _" in line)
    assert out[header + 1] == "UnplayedError: the cassette was not played to the end:"
    result.stdout.fnmatch_lines(
        [
            "UnplayedError: the cassette was not played to the end:",
            "connection 1 (cassette 'session', /v1/realtime?model=gpt-realtime):",
            "  step 2 (line *): server 'session.updated' never played",
            "  cassette 'session': *session.yaml",
            "FAILED test_it.py::test_audio_instead - Failed: UnplayedError: *",
        ]
    )
    for noise in ("*pytest_runtest_call*", "*def _verify*", "*plugin.py*", "*During handling*"):
        result.stdout.no_fnmatch_line(noise)


DEFAULT = """\
import asyncio
import pytest
from client import session_update

def test_default(fakeupstream):
    created, _ = asyncio.run(session_update(fakeupstream.url + "/v1/realtime?model=m"))
    assert created["event_id"] == "default"

class TestChat:
    def test_in_class(self, fakeupstream):
        created, _ = asyncio.run(session_update(fakeupstream.url + "/v1/realtime?model=m"))
        assert created["event_id"] == "in class"

@pytest.mark.parametrize("n", [1])
def test_missing(fakeupstream, n):
    asyncio.run(session_update(fakeupstream.url + "/v1/realtime?model=m"))

def test_missing_but_named_in_the_path(fakeupstream):
    base = fakeupstream.cassette_url("test_it/test_default").replace("http", "ws")
    asyncio.run(session_update(base + "/v1/realtime?model=m"))
"""


def session_cassette(event_id: str) -> str:
    return (
        "version: 1\ntimeline:\n"
        f"  - server: {{type: session.created, event_id: {event_id}, session: {{}}}}\n"
        "  - client: {type: session.update}\n"
        "  - server: {type: session.updated, event_id: u, session: {}}\n"
    )


def test_a_test_without_a_marker_replays_module_slash_test(project: pytest.Pytester) -> None:
    cassettes = project.mkdir("cassettes")
    (cassettes / "test_it").mkdir()
    (cassettes / "test_it" / "test_default.yaml").write_text(session_cassette("default"))
    (cassettes / "test_it" / "TestChat.test_in_class.yaml").write_text(
        session_cassette("'in class'")
    )
    project.makepyfile(test_it=DEFAULT)
    result = project.runpytest("-p", "no:cacheprovider", f"--cassette-dir={cassettes}")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_missing?1? _*",
            "fakeupstream: this test names no cassette, and its default one does not exist: "
            f"{cassettes}/test_it/test_missing-1.yaml",
            "  to record it against the real API: OPENAI_API_KEY=sk-... pytest "
            f"--record-mode=once --cassette-dir {cassettes} test_it.py::test_missing?1?",
            '  or name an existing one: @pytest.mark.cassette("name") *',
            "  connection * was refused: no cassette selected (HTTP 404 no_cassette); the test "
            "then failed with InvalidStatus: server rejected WebSocket connection: HTTP 404",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


BLOCKER = """\
import socket
import pytest

class SocketBlockedError(RuntimeError):  # pytest-socket's name
    pass

@pytest.fixture(autouse=True)
def block(request, monkeypatch):
    # What pytest-recording's --block-network (0.14) and pytest-socket do to every connect.
    def refuse(self, address, *args, **kwargs):
        if request.node.name.endswith("socket"):
            raise SocketBlockedError(f"A test tried to use socket.socket.connect() with {address}")
        raise RuntimeError(f"Network is disabled for host {address[0]!r}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
"""


def test_a_blocked_connection_to_the_fake_says_which_host_to_allow(
    project: pytest.Pytester,
) -> None:
    project.makeconftest(BLOCKER)
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import asyncio
        import pytest
        from client import session_update

        @pytest.mark.cassette("session")
        def test_recording(fakeupstream):
            asyncio.run(session_update(fakeupstream.url + "/v1/realtime?model=m"))

        @pytest.mark.cassette("session")
        def test_socket(fakeupstream):
            asyncio.run(session_update(fakeupstream.url + "/v1/realtime?model=m"))

        @pytest.mark.cassette("session", allow_unplayed=True)
        def test_another_host(fakeupstream):
            import socket
            with socket.socket() as sock:  # closed: socket.create_connection would leak it
                sock.connect(("192.0.2.1", 80))  # refused by the blocker, never sent
        """)
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    # Another host's refusal is the test's own business: its error is left as it is.
    result.stdout.fnmatch_lines(["*RuntimeError: Network is disabled for host '192.0.2.1'"])
    result.stdout.fnmatch_lines(
        [
            "fakeupstream: pytest-recording's network blocking refused the connection to the "
            "fake upstream on 127.0.0.1: allow it with --allowed-hosts=127.0.0.1 (or "
            'allowed_hosts=["127.0.0.1"] in @pytest.mark.block_network or vcr_config)',
            "fakeupstream: pytest-socket refused the connection to the fake upstream on "
            "127.0.0.1: allow it with --allow-hosts=127.0.0.1",
        ]
    )
