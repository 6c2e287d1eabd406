"""The README's "In your own tests", followed from an empty environment.

A new virtual environment gets the built wheel and, of everything installed here, only
the distributions the README's install line names and what they depend on (offline:
they are linked, not downloaded). A new folder gets the README's example test, with no
configuration at all, plus two tests a newcomer writes next: one without a marker, and
one that sends the wrong event. pytest runs there as a separate process.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .test_downstream_project import TIMEOUT, build_wheel

ROOT = Path(__file__).resolve().parents[2]

NEXT_TESTS = """\
import asyncio, json
from websockets.asyncio.client import connect

import pytest


async def send_first(url, event):
    async with connect(url, additional_headers={"Authorization": "Bearer sk-test"}) as ws:
        await ws.recv()
        await ws.send(json.dumps(event))
        await ws.recv()


def test_without_a_marker(fakeupstream):
    asyncio.run(send_first(f"{fakeupstream.url}/v1/realtime?model=gpt-realtime", {}))


@pytest.mark.cassette("session")
def test_wrong_event(fakeupstream):
    url = f"{fakeupstream.url}/v1/realtime?model=gpt-realtime"
    asyncio.run(send_first(url, {"type": "response.create"}))
"""


def readme_section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def install_line(section: str) -> list[str]:
    [line] = re.findall(r"^pip install (.+)$", section, flags=re.MULTILINE)
    return line.split()


def requirement_closure(names: list[str]) -> set[str]:
    """The installed distributions ``names`` need, with what those need, recursively."""
    wanted: set[str] = set()
    todo = [Requirement(name) for name in names]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in wanted:
            continue
        wanted.add(name)
        for text in importlib.metadata.distribution(name).requires or ():
            needed = Requirement(text)
            extras = requirement.extras or {""}
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                todo.append(needed)
    return wanted


def link_distributions(names: set[str], into: Path) -> None:
    """Link the top-level files of each named installed distribution into ``into``."""
    into.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for name in names:
        distribution = importlib.metadata.distribution(name)
        tops = {Path(str(file)).parts[0] for file in distribution.files or ()}
        for top in tops - {".."}:
            if (site / top).exists() and not (into / top).exists():
                (into / top).symlink_to(site / top)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinked dependencies")
def test_the_readme_from_an_empty_environment(tmp_path: Path) -> None:
    section = readme_section("In your own tests")
    names = install_line(section)
    assert names == ["fakeupstream", "pytest", "pytest-asyncio", "openai"]
    borrowed = requirement_closure(names)
    assert "jsonschema" not in borrowed and "pytest-xdist" not in borrowed  # really narrower
    borrowed.discard("fakeupstream")  # from the wheel, never from this checkout
    wheel = build_wheel(tmp_path / "dist")

    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    env_site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        ).stdout.strip()
    )
    link_distributions(borrowed, tmp_path / "deps")
    (env_site / "borrowed.pth").write_text(f"{tmp_path / 'deps'}\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    subprocess.run(
        [*pip, "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=TIMEOUT,
        capture_output=True,
    )

    project = tmp_path / "project"
    project.mkdir()
    [example] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    (project / "test_reply.py").write_text(example)
    (project / "test_next.py").write_text(textwrap.dedent(NEXT_TESTS))
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTEST_ADDOPTS", "VIRTUAL_ENV", "OPENAI_API_KEY")
    }
    result = subprocess.run(
        [python, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=project,
        env=clean,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    out = result.stdout
    assert "2 failed, 1 passed" in out, out + result.stderr
    assert "test_reply.py ." in out  # the README's example passes as written
    failures = out.split("= FAILURES =", 1)[1]
    # A test without a marker: the file it looked for and the command that records it.
    without = failures.split("_ test_without_a_marker _", 1)[1].splitlines()[1:3]
    assert without[0].startswith(
        "fakeupstream: this test names no cassette, and its default one does not exist: "
    )
    assert "/cassettes/test_next/test_without_a_marker.yaml (the bundled cassettes" in without[0]
    assert without[1] == (
        "  to record it against the real API: OPENAI_API_KEY=sk-... pytest "
        "--record-mode=once --cassette-dir DIR test_next.py::test_without_a_marker"
    )
    # A mismatch: the first line is the diff's summary, no plugin source around it.
    wrong = failures.split("_ test_wrong_event _", 1)[1].splitlines()
    assert wrong[1] == "MismatchError: the client did not send what the cassette expected:"
    assert "    type: expected 'session.update', got 'response.create'" in wrong
    assert "plugin.py" not in out
    # No warning while the tests run (pytest-asyncio's own, at start-up, asks for an ini key).
    assert "warnings summary" not in out
