"""The package's layers, enforced: the sans-I/O core at the top imports no I/O.

The top-level modules of ``fakeupstream`` (except the entry points listed in
``ENTRY_POINTS``) hold the model and the decisions: they never import asyncio,
websockets, sockets, threads, a clock or the file system, and never reach down into
``storage/`` or ``serve/``. ``storage/`` never calls up into ``serve/``. A module that
breaks a rule fails here with the line of the offending import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fakeupstream"

# The layer on top: they wire the core to storage and serving, so they may import anything.
ENTRY_POINTS = frozenset({"__init__", "__main__", "cli", "plugin", "plugin_options"})

# What the sans-I/O core must not import (top-level names of modules).
IO_MODULES = frozenset(
    {
        "asyncio",
        "websockets",
        "socket",
        "ssl",
        "selectors",
        "threading",
        "subprocess",
        "time",
        "os",
        "shutil",
        "tempfile",
        "io",
        "pathlib",
        "fcntl",
        "glob",
        "yaml",
    }
)
# The one name from pathlib the model may mention: a cassette remembers where it came from.
ALLOWED_FROM = {("pathlib", "Path"), ("pathlib", "PurePosixPath")}
IO_BUILTINS = frozenset({"open"})


def imports(path: Path) -> list[tuple[int, str, str | None, int]]:
    """``(line, module, name, level)`` for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, None, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.extend(
                (node.lineno, node.module or "", alias.name, node.level) for alias in node.names
            )
    return found


def calls_builtin_io(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in IO_BUILTINS
    ]


def core_modules() -> list[Path]:
    return sorted(path for path in PACKAGE.glob("*.py") if path.stem not in ENTRY_POINTS)


def test_the_layers_exist() -> None:
    assert (PACKAGE / "storage" / "__init__.py").is_file()
    assert (PACKAGE / "serve" / "__init__.py").is_file()
    assert len(core_modules()) >= 10


@pytest.mark.parametrize("path", core_modules(), ids=lambda path: path.stem)
def test_the_core_imports_no_io(path: Path) -> None:
    problems = []
    for line, module, name, level in imports(path):
        top = module.split(".")[0]
        if level == 0 and top in IO_MODULES and (module, name) not in ALLOWED_FROM:
            problems.append(f"{path.name}:{line}: imports {module}{'.' + name if name else ''}")
        if level == 1 and top in ("storage", "serve"):
            problems.append(f"{path.name}:{line}: reaches down into {module}")
        if level == 1 and module == "" and name in ("storage", "serve"):
            problems.append(f"{path.name}:{line}: reaches down into {name}")
    problems.extend(f"{path.name}:{line}: calls open()" for line in calls_builtin_io(path))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "storage").glob("*.py")), ids=lambda path: path.stem
)
def test_storage_never_calls_up_into_serving(path: Path) -> None:
    problems = [
        f"storage/{path.name}:{line}: imports {module or name}"
        for line, module, name, level in imports(path)
        if (level == 2 and (module.startswith("serve") or name == "serve"))
        or (level == 0 and top_is(module, ("websockets", "asyncio")))
    ]
    assert not problems, "\n".join(problems)


def top_is(module: str, names: tuple[str, ...]) -> bool:
    return module.split(".")[0] in names


def test_the_rule_catches_an_offender(tmp_path: Path) -> None:
    offender = tmp_path / "bad.py"
    offender.write_text("import asyncio\nfrom .serve.server import FakeUpstream\nopen('x')\n")
    found = [(line, module) for line, module, _name, _level in imports(offender)]
    assert found == [(1, "asyncio"), (2, "serve.server")]
    assert calls_builtin_io(offender) == [3]
