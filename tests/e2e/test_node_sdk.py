"""The official Node SDK (``openai`` on npm, ``OpenAIRealtimeWS``) as a real client.

It always dials ``wss://``, so the fake runs as ``fakeupstream serve --tls`` and Node
trusts it with nothing but ``NODE_EXTRA_CA_CERTS``. The SDK is installed from the npm
registry on first use into ``.cache/node-sdk`` at the repository root (kept between
runs, under a lock for xdist workers). Without Node these tests fail, never skip:
``.ci/run`` installs it (``apt-get install -y nodejs npm``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ..helpers import TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("node") / "realtime_text.mjs"
# Majors known to work: OpenAIRealtimeWS needs `ws` (a peer dependency of openai).
PACKAGES = ("openai@6", "ws@8")
REPLY = "Hi there, friend!"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    """Session scope, ``Path``: a folder whose ``node_modules`` holds the SDK and the script."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "Node.js and npm are needed for the Node SDK tests: apt-get install -y nodejs npm "
            "(.ci/run does this when they are missing)",
            pytrace=False,
        )
    folder = ROOT / ".cache" / "node-sdk"
    with _locked(folder.parent / ".node-sdk.lock"):
        if not (folder / "node_modules" / "openai" / "realtime" / "ws.mjs").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            result = subprocess.run(
                [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", *PACKAGES],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0:
                pytest.fail(f"npm install {' '.join(PACKAGES)} failed:\n{result.stderr}")
        # Next to node_modules, so its ESM imports resolve there.
        shutil.copyfile(SCRIPT, folder / SCRIPT.name)
    return folder


@contextlib.asynccontextmanager
async def process(*argv: str, env: dict[str, str]) -> AsyncIterator[tuple[str, str]]:
    """Run a server process until it prints its URL; yield ``(url, second line or "")``."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT * 4)).decode().strip()
        assert first.startswith("listening on wss://"), first
        second = ""
        if "--tls" in argv:
            second = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode().strip()
        yield first.split()[-1], second
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
        assert proc.stderr is not None
        assert b"Traceback" not in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def fake_tls(cache: Path) -> AsyncIterator[tuple[str, Path]]:
    """``fakeupstream serve --tls --cassette text_response``: yield its URL and CA file."""
    argv = (sys.executable, "-m", "fakeupstream", "serve", "--tls", "--port", "0")
    async with process(
        *argv, "--cassette", "text_response", env={"XDG_CACHE_HOME": str(cache)}
    ) as (url, ca_line):
        assert ca_line.startswith("ca certificate: "), ca_line
        yield url, Path(ca_line.removeprefix("ca certificate: "))


async def node_round_trip(node_sdk: Path, https_base: str, ca: Path) -> dict[str, object]:
    """Run the script with only ``NODE_EXTRA_CA_CERTS`` (and ``PATH``) in its environment."""
    node = shutil.which("node")
    assert node is not None
    proc = await asyncio.create_subprocess_exec(
        node,
        node_sdk / SCRIPT.name,
        f"{https_base}/v1",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", ""), "NODE_EXTRA_CA_CERTS": str(ca)},
        cwd=node_sdk,
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT * 4)
    assert proc.returncode == 0, err.decode()
    result: dict[str, object] = json.loads(out.decode().splitlines()[-1])
    return result


@pytest.mark.asyncio
async def test_node_sdk_text_round_trip_over_tls(node_sdk: Path, tmp_path: Path) -> None:
    async with fake_tls(tmp_path) as (url, ca):
        result = await node_round_trip(node_sdk, url.replace("wss://", "https://", 1), ca)
    assert result["text"] == REPLY
    assert result["status"] == "completed"


@pytest.mark.asyncio
async def test_node_sdk_text_round_trip_through_the_proxy(node_sdk: Path, tmp_path: Path) -> None:
    async with fake_tls(tmp_path) as (fake_url, ca):
        # The proxy serves wss:// with the fake's own certificate, and trusts the fake's
        # CA upstream through OpenSSL's SSL_CERT_FILE.
        tls = ca.parent
        argv = (sys.executable, "-m", "proxy", "--port", "0", "--log-level", "warning")
        async with process(
            *argv,
            "--upstream",
            fake_url.replace("wss://", "https://", 1),
            "--tls-cert",
            str(tls / "server.pem"),
            "--tls-key",
            str(tls / "server-key.pem"),
            env={"SSL_CERT_FILE": str(ca)},
        ) as (proxy_url, _):
            result = await node_round_trip(node_sdk, proxy_url.replace("wss://", "https://", 1), ca)
    assert result["text"] == REPLY
    assert result["status"] == "completed"
