"""python -m proxy: argument errors in-process, and the real process end to end."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from fakeupstream import FakeUpstream
from proxy.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: --upstream"),
        (["--upstream"], "expected one argument"),
        (["--upstream", "http://h", "--port", "70000"], "port 70000 is not in 0-65535"),
        (["--upstream", "http://h", "--connect-timeout", "soon"], "is not a number of seconds"),
        (["--upstream", "http://h", "--connect-timeout", "-1"], "positive number of seconds"),
        (["--upstream", "ftp://h"], "must start with http://, https://, ws:// or wss://"),
        (["--upstream", "http://h", "--upstream-header", "OpenAI-Beta"], "'Name: value'"),
        (["--upstream", "http://h", "--upstream-header", "Authorization: x"], "--api-key-env"),
        (["--upstream", "http://h", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_argument_errors_print_usage_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m proxy")
    assert message in err
    assert "Traceback" not in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--upstream-header" in capsys.readouterr().out


async def start_process(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxy",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_process_serves_a_session_then_exits_cleanly_on_signal(
    stop: signal.Signals, fake: FakeUpstream, time_limit: float
) -> None:
    process = await start_process("--port", "0", "--upstream", fake.http_url)
    try:
        async with asyncio.timeout(time_limit * 2):  # includes interpreter start-up
            assert process.stdout is not None
            line = (await process.stdout.readline()).decode()
            assert line.startswith("listening on ws://127.0.0.1:"), line
            url = line.split()[-1]
            async with connect(
                f"{url}/v1/realtime?model=gpt-realtime",
                additional_headers={"Authorization": "Bearer sk-test-proxy"},
            ) as ws:
                assert json.loads(await ws.recv())["type"] == "session.created"
                process.send_signal(stop)
                await ws.wait_closed()
                assert ws.close_code == 1001
            _, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert b"session" in err and b" end " in err


@pytest.mark.asyncio
async def test_process_usage_error_exits_2(time_limit: float) -> None:
    process = await start_process("--upstream", "nope://h")
    async with asyncio.timeout(time_limit * 2):
        out, err = await process.communicate()
    assert process.returncode == 2
    assert out == b""
    assert err.startswith(b"usage: python -m proxy")
    assert b"Traceback" not in err
