"""The plugin's ``--fakeupstream-tls``: the session's server speaks wss:// with the local CA."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

# Imported here, before pytester's in-process runs: pytester drops the modules a run
# imported, and cryptography's Rust core cannot be imported twice in one process.
import trustme  # noqa: F401

INI = """\
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""

TEST = textwrap.dedent("""\
    import asyncio, json, ssl
    import pytest
    from websockets.asyncio.client import connect

    async def created(url, ca):
        context = ssl.create_default_context(cafile=str(ca))
        async with connect(url, additional_headers={"Authorization": "Bearer k"},
                           ssl=context) as ws:
            return json.loads(await ws.recv())["type"]

    @pytest.mark.cassette("session", allow_unplayed=True)
    def test_wss(fakeupstream):
        assert fakeupstream.url.startswith("wss://")
        assert fakeupstream.http_url.startswith("https://")
        url = fakeupstream.url + "/v1/realtime?model=gpt-realtime"
        assert asyncio.run(created(url, fakeupstream.ca_certificate)) == "session.created"
    """)


@pytest.fixture
def project(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pytester.makeini(INI)
    pytester.makepyfile(test_wss=TEST)
    return pytester


def test_the_command_line_flag_serves_wss(project: pytest.Pytester, tmp_path: Path) -> None:
    project.runpytest("-p", "no:cacheprovider", "--fakeupstream-tls").assert_outcomes(passed=1)
    assert (tmp_path / "cache" / "fakeupstream" / "tls" / "ca.pem").is_file()


def test_the_ini_key_serves_wss(project: pytest.Pytester) -> None:
    project.makeini(INI + "fakeupstream_tls = true\n")
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
