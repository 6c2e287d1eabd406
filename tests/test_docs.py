"""The examples in README and docs/ run as tests, so the docs stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INI = """\
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def test_the_plugin_guide_examples_pass(pytester: pytest.Pytester) -> None:
    blocks = [
        block for block in python_blocks(ROOT / "docs" / "pytest-plugin.md") if "def test_" in block
    ]
    assert len(blocks) >= 2
    pytester.makeini(INI)
    for number, block in enumerate(blocks):
        pytester.makepyfile(**{f"test_example_{number}": block})
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=sum(block.count("def test_") for block in blocks))


def test_the_readme_example_passes(pytester: pytest.Pytester) -> None:
    """In this environment; tests/e2e/test_readme_fresh_env.py runs it in a new one that
    holds only what the README's install line names, with no configuration at all."""
    [block] = [block for block in python_blocks(ROOT / "README.md") if "def test_" in block]
    pytester.makeini(INI)  # quiets pytest-asyncio's start-up warning in this suite
    pytester.makepyfile(test_reply=block)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_readme_quickstart_matches_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    first_screen = readme.split("---", 1)[0]
    assert "bash .ci/run" in first_screen
    assert "fakeupstream serve" in first_screen
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pytest" in ci and "mypy" in ci and "ruff check" in ci
