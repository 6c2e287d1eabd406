"""``fakeupstream serve --tls`` as a real process, and a TLS client on the plain port."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from fakeupstream.cli import main

from .helpers import TIMEOUT, recv_event, ws_connect


@asynccontextmanager
async def serve(env: dict[str, str], *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakeupstream",
        "serve",
        "--port",
        "0",
        "--cassette",
        "session",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), TIMEOUT * 4)).decode().strip()


async def stop(process: asyncio.subprocess.Process) -> str:
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
    assert process.stderr is not None
    err = (await process.stderr.read()).decode()
    assert "Traceback" not in err
    return err


@pytest.mark.asyncio
async def test_serve_tls_prints_the_wss_url_and_the_ca_to_trust(tmp_path: Path) -> None:
    async with serve({"XDG_CACHE_HOME": str(tmp_path)}, "--tls") as process:
        listening = await line(process)
        assert listening.startswith("listening on wss://127.0.0.1:")
        ca = Path((await line(process)).removeprefix("ca certificate: "))
        assert ca == tmp_path / "fakeupstream" / "tls" / "ca.pem"
        context = ssl.create_default_context(cafile=str(ca))
        url = listening.split()[-1]
        async with ws_connect(f"{url}/v1/realtime?model=gpt-realtime", ssl=context) as ws:
            assert (await recv_event(ws))["type"] == "session.created"
        await stop(process)


@pytest.mark.asyncio
async def test_the_plain_port_tells_a_tls_client_to_use_tls(tmp_path: Path) -> None:
    async with serve({}) as process:
        url = (await line(process)).split()[-1]
        host, port = url.removeprefix("ws://").rsplit(":", 1)
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises((ssl.SSLError, ConnectionResetError)):
                await asyncio.open_connection(host, int(port), ssl=ssl.create_default_context())
        err = await stop(process)
    # One line, whatever prefix the CLI's log format gives it.
    hints = [line for line in err.splitlines() if "this client speaks TLS" in line]
    assert len(hints) == 1
    assert hints[0].endswith("this client speaks TLS: start with --tls")


def test_tls_cert_without_tls_key_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", "0", "--tls-cert", str(tmp_path / "c.pem")]) == 1
    assert capsys.readouterr().err == (
        "fakeupstream: error: --tls-cert and --tls-key go together: give both\n"
    )


def test_an_unusable_pair_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem")]
    assert main(["serve", "--port", "0", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"fakeupstream: error: cannot use TLS certificate {tmp_path}/c.pem")
    assert "Traceback" not in err
