"""What the package declares: its license, its extras, and what CI installs."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_license_file_is_the_mit_license_pyproject_declares() -> None:
    assert PROJECT["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 fakeupstream contributors" in text


def test_users_extras_hold_no_maintainer_tools() -> None:
    extras = PROJECT["optional-dependencies"]
    tools = ("ruff", "mypy", "hatchling", "types-pyyaml")
    for extra in ("sdk", "test"):
        assert not [req for req in extras[extra] if req.lower().startswith(tools)], extra
    assert sorted(req.lower().split(">")[0] for req in extras["dev"]) == sorted(tools)


def test_ci_installs_the_test_and_dev_extras() -> None:
    assert "--editable '.[test,dev]'" in (ROOT / ".ci" / "run").read_text()


def test_the_supported_python_versions_are_classifiers() -> None:
    assert PROJECT["requires-python"] == ">=3.11"
    versions = [
        c for c in PROJECT["classifiers"] if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert versions == [f"Programming Language :: Python :: 3.{minor}" for minor in (11, 12, 13)]
