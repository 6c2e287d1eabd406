"""The unexpected-event policy in the pytest plugin: flag, ini key and marker option."""

from __future__ import annotations

import textwrap

import pytest

INI = """\
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""

# conversation_item_added expects conversation.item.create; a session.update comes first.
TESTS = """\
import json
import pytest
from websockets.asyncio.client import connect

AUTH = {"Authorization": "Bearer sk-test"}
UPDATE = {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}


async def first_answer(fakeupstream, closes):
    # The type of the answer to an unexpected session.update, and the close code
    # when the server closes (None when the session stays open).
    url = fakeupstream.url + "/v1/realtime?model=gpt-realtime"
    async with connect(url, additional_headers=AUTH) as ws:
        await ws.recv()
        await ws.send(json.dumps(UPDATE))
        answer = json.loads(await ws.recv())
        if closes:
            await ws.wait_closed()
            return answer["type"], ws.close_code
        return answer["type"], None


@pytest.mark.asyncio
@pytest.mark.cassette("conversation_item_added", allow_unplayed=True)
async def test_default(fakeupstream):
    assert await first_answer(fakeupstream, CLOSES) == EXPECTED


@pytest.mark.asyncio
@pytest.mark.cassette("conversation_item_added", allow_unplayed=True, allow_mismatches=True,
                      on_unexpected="close")
async def test_marker_wins(fakeupstream):
    assert await first_answer(fakeupstream, True) == ("error", 1008)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    return pytester


def write(project: pytest.Pytester, expected: tuple[str, int | None]) -> None:
    body = TESTS.replace("== EXPECTED", f"== {expected!r}")
    project.makepyfile(test_it=f"CLOSES = {expected[1] == 1008}\n" + body)


def test_emulate_is_the_default_and_the_marker_overrides_it(project: pytest.Pytester) -> None:
    write(project, ("session.updated", None))
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_flag_and_the_ini_key_set_the_policy(project: pytest.Pytester) -> None:
    write(project, ("error", None))
    result = project.runpytest(
        "-p", "no:cacheprovider", "--fakeupstream-on-unexpected", "error", "-k", "default"
    )
    # `error` is today's behaviour: an error frame, the socket stays open, and a mismatch.
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*MismatchError*", "*unexpected client frame at step 1*"])
    project.makeini(INI + "fakeupstream_on_unexpected = close\n")
    write(project, ("error", 1008))
    result = project.runpytest("-p", "no:cacheprovider", "-k", "default")
    result.assert_outcomes(failed=1)  # the test saw the close, the plugin the mismatch
    result.stdout.fnmatch_lines(["*MismatchError*"])
    result.stdout.no_fnmatch_line("*assert*==*")


def test_a_bad_policy_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_it="def test_nothing():\n    pass\n")
    result = project.runpytest("-p", "no:cacheprovider", "--fakeupstream-on-unexpected", "ignore")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*expected one of: emulate, error, close*"])
    project.makepyfile(
        test_it=textwrap.dedent("""\
        import pytest

        @pytest.mark.cassette("session", on_unexpected="sometimes")
        def test_bad(fakeupstream):
            pass
        """)
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown unexpected-event policy 'sometimes'*"])
