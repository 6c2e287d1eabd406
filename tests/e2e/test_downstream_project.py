"""A downstream project uses fakeupstream the way a user would: from the built wheel.

The test builds the wheel, checks what it ships, installs it into a fresh virtual
environment, writes a small project that uses the ``fakeupstream`` fixture and the
``cassette`` marker, and runs its pytest in a subprocess. Offline: the wheel is
built without isolation, and the new environment borrows the already installed
dependencies (never fakeupstream itself, never this checkout).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120

APP = '''\
"""The downstream project's own code: greet a realtime model and return its text."""
import json
from websockets.asyncio.client import connect


async def greet(base_url: str, key: str) -> str:
    url = base_url.replace("http", "ws", 1) + "/v1/realtime?model=gpt-realtime"
    async with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(json.dumps({"type": "session.update",
                                  "session": {"type": "realtime", "output_modalities": ["text"]}}))
        await ws.recv()
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Say hi in three words"}]}}))
        await ws.send(json.dumps({"type": "response.create"}))
        text = ""
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "response.output_text.delta":
                text += event["delta"]
            elif event["type"] == "response.done":
                return text
'''

TESTS = """\
import fakeupstream
import pytest

from app import greet


@pytest.mark.asyncio
@pytest.mark.cassette("text_response")
async def test_greet(fakeupstream):
    assert await greet(fakeupstream.http_url, "sk-test") == "Hi there, friend!"


def test_installed_from_the_wheel():
    assert "site-packages" in fakeupstream.__file__
"""


def build_wheel(out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        timeout=TIMEOUT,
        capture_output=True,
    )
    [wheel] = out.glob("fakeupstream-*.whl")
    return wheel


def borrowed_dependencies(into: Path) -> Path:
    """Link every installed distribution except fakeupstream into one directory."""
    into.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(("fakeupstream", "_editable_impl_fakeupstream", "__editable__")):
            continue
        if name.endswith(".pth"):
            continue
        (into / entry.name).symlink_to(entry)
    return into


@pytest.mark.skipif(sys.platform == "win32", reason="symlinked dependencies")
def test_a_downstream_project_uses_the_fixture_and_marker_from_the_wheel(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fakeupstream/py.typed" in names
    assert "fakeupstream/cassettes/beta_header_rejected.yaml" in names
    assert "fakeupstream/schema/cassette-v1.schema.json" in names
    assert [name for name in names if ".dist-info/" in name and name.endswith("/LICENSE")]
    assert not [name for name in names if name.startswith(("proxy/", "tests/", "cassettes/"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert (
        "fakeupstream = fakeupstream.plugin" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )

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
    deps = borrowed_dependencies(tmp_path / "deps")
    (env_site / "borrowed_dependencies.pth").write_text(f"{deps}\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=TIMEOUT,
        capture_output=True,
    )

    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "app.py").write_text(APP)
    (project / "tests" / "test_app.py").write_text(TESTS)
    (project / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [tool.pytest.ini_options]
        asyncio_mode = "strict"
        asyncio_default_fixture_loop_scope = "function"
        pythonpath = ["."]
        addopts = ["--strict-markers", "-p", "no:cacheprovider"]
        """)
    )
    clean_env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTEST_ADDOPTS", "VIRTUAL_ENV")
    }
    result = subprocess.run(
        [python, "-m", "pytest", "-q"],
        cwd=project,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
