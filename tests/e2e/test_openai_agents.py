"""openai-agents' realtime runner (PyPI ``openai-agents``) as a real client of the fake.

openai-agents pins its own websockets (16 today), so it cannot share ``.venv`` (the
newest websockets). The test setup makes a virtual environment of its own on first use,
``.cache/agents-venv`` at the repository root (kept between runs, under a lock for xdist
workers), with openai-agents from PyPI; the runner talks to a fake served by this test.
Without PyPI on the first run the test fails, never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakeupstream import FakeUpstream
from fakeupstream.report import verify

from ..helpers import TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("agents") / "realtime_text.py"
CASSETTES = Path(__file__).with_name("cassettes")
REQUIREMENT = "openai-agents>=0.24,<0.25"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(*argv: str | Path) -> None:
    result = subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} failed:\n{result.stderr[-4000:]}", pytrace=False)


@pytest.fixture(scope="session")
def agents_python() -> Path:
    """Session scope, ``Path``: a Python with openai-agents installed."""
    venv = ROOT / ".cache" / "agents-venv"
    python = venv / "bin" / "python"
    with _locked(venv.parent / ".agents-venv.lock"):
        ready = venv / ".ready"
        if not ready.is_file() or ready.read_text().strip() != REQUIREMENT:
            _run(sys.executable, "-m", "venv", "--clear", venv)
            _run(python, "-m", "pip", "install", "--quiet", REQUIREMENT)
            ready.write_text(REQUIREMENT + "\n")
    return python


@pytest.mark.asyncio
async def test_the_agents_realtime_runner_gets_the_reply(agents_python: Path) -> None:
    async with FakeUpstream(CASSETTES, "agents_text_response") as fake:
        proc = await asyncio.create_subprocess_exec(
            agents_python,
            SCRIPT,
            f"{fake.url}/v1/realtime?model=gpt-realtime",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1"},
        )
        # A guard against a hang, not a speed check: importing openai-agents alone takes
        # seconds on a loaded machine.
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT * 24)
        assert proc.returncode == 0, err.decode()
        await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
        # Every frame the runner sent was expected, and the whole recording played.
        verify(fake.reports())
    assert json.loads(out.decode().splitlines()[-1]) == {
        "text": "Hi there, friend!",
        "status": "completed",
    }
