"""``fakeupstream record`` as a real process, recording from a stand-in upstream."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from asyncio.subprocess import Process
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from fakeupstream import FakeUpstream, load_cassette

from .helpers import TIMEOUT, recv_event, send_event, ws_connect

KEY = "sk-SENTINEL0123456789abcdefXYZ"


def environment(**changes: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


async def start_record(cassette: str, directory: Path, upstream: str) -> Process:
    """``fakeupstream record`` on a free port, with the sentinel key; the caller stops it."""
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "fakeupstream", "record", "--cassette", cassette),
        *("--cassette-dir", str(directory), "--upstream", upstream, "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(OPENAI_API_KEY=KEY),
    )


def test_record_without_a_key_says_how_to_set_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fakeupstream", "record", "--cassette", "x", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 6,
        check=False,
        cwd=tmp_path,
        env=environment(OPENAI_API_KEY=None),
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "fakeupstream: error: OPENAI_API_KEY is not set: recording needs a real key "
        "(export OPENAI_API_KEY=sk-...; it is only sent upstream, never written to a cassette)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_record_refuses_a_path_as_cassette_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fakeupstream.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert main(["record", "--cassette", "../x", "--port", "0"]) == 1
    assert "'../x' is not a cassette name" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_record_prints_where_to_connect_and_what_it_wrote(tmp_path: Path) -> None:
    async with FakeUpstream() as standin:
        process = await start_record("take", tmp_path, standin.cassette_url("session"))
        try:
            assert process.stdout is not None and process.stderr is not None
            line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT * 4)).decode()
            found = re.fullmatch(
                r"recording cassette take: point your client at "
                r"(ws://127\.0\.0\.1:\d+)/v1/realtime\?model=gpt-realtime "
                r"\(OpenAI SDK: base_url=http://127\.0\.0\.1:\d+/v1\)\n",
                line,
            )
            assert found is not None, line
            async with ws_connect(f"{found[1]}/v1/realtime?model=gpt-realtime") as ws:
                assert (await recv_event(ws))["type"] == "session.created"
                await send_event(ws, {"type": "session.update", "session": {"type": "realtime"}})
                assert (await recv_event(ws))["type"] == "session.updated"
            line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode()
            assert line == f"wrote {tmp_path / 'take.yaml'} (3 frames, 1 connection)\n"
            # SIGTERM with a session still open: it is closed (1001) and saved first.
            async with ws_connect(f"{found[1]}/v1/realtime?model=gpt-realtime") as ws:
                assert (await recv_event(ws))["type"] == "session.created"
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
            assert ws.close_code == 1001
            assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
            line = (await process.stdout.readline()).decode()
            assert line == f"wrote {tmp_path / 'take.yaml'} (4 frames, 2 connections)\n"
            out, err = await process.stdout.read(), await process.stderr.read()
            assert b"Traceback" not in err
            assert KEY.encode() not in out + err
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    cassette = load_cassette(tmp_path / "take.yaml")
    assert cassette.recorded.model == "gpt-realtime"
    assert [len(episode.timeline) for episode in cassette.episodes] == [3, 1]


@pytest.mark.asyncio
async def test_record_saves_a_minted_key_with_the_session_that_uses_it(tmp_path: Path) -> None:
    session = {"type": "realtime", "model": "gpt-realtime", "instructions": "Talk like a pirate."}
    async with FakeUpstream() as standin:
        process = await start_record("minted", tmp_path, standin.cassette_url("text_response"))
        try:
            assert process.stdout is not None and process.stderr is not None
            line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT * 4)).decode()
            found = re.search(r"base_url=(http://127\.0\.0\.1:\d+/v1)", line)
            assert found is not None, line
            backend = AsyncOpenAI(api_key="sk-backend-0123456789", base_url=found[1])
            secret = await backend.realtime.client_secrets.create(session=session)
            await backend.close()
            line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode()
            path = tmp_path / "minted.yaml"
            assert line == f"wrote {path} (0 frames, 0 connections, 1 HTTP exchange)\n"
            ws_url = found[1].replace("http://", "ws://") + "/realtime?model=gpt-realtime"
            async with ws_connect(ws_url, {"Authorization": f"Bearer {secret.value}"}) as ws:
                created = await recv_event(ws)
            assert created["session"]["instructions"] == session["instructions"]
            line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode()
            assert line == f"wrote {path} (1 frame, 1 connection, 1 HTTP exchange)\n"
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
            assert b"Traceback" not in await process.stderr.read()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = path.read_text()
    assert KEY not in text and secret.value not in text and "ek_REDACTED" in text
