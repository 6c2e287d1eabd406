"""Every error fakeupstream raises on purpose.

Hierarchy::

    FakeUpstreamError
    ├── CassetteError             a cassette file is malformed (file, line, what was expected)
    ├── CassetteNotFound          no cassette by that name (lists what exists)
    ├── FaultError                a fault that cannot be armed (also a ValueError)
    ├── RecordError               recording failed or was refused (missing key, leak guard, ...)
    │   └── SecretLeakError       the leak guard found a secret in a cassette about to be written
    └── ReplayFailure             also an AssertionError, so pytest shows a test *failure*
        ├── MismatchError         the client sent something the cassette did not expect
        └── UnplayedError         the cassette expected more than the client did

Exceptions carry structured fields and build their message in ``__str__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "CassetteError",
    "CassetteNotFound",
    "FakeUpstreamError",
    "FaultError",
    "MismatchError",
    "RecordError",
    "ReplayFailure",
    "SecretLeakError",
    "UnplayedError",
]


class FakeUpstreamError(Exception):
    """Root of every error raised by fakeupstream."""


class FaultError(FakeUpstreamError, ValueError):
    """A fault that cannot be armed; the message lists the valid values.

    Attributes:
        problem: what is wrong, and what would be valid.
        param: the parameter at fault (``kind`` for the kind itself), so a caller
            can point at it (the YAML reader names its line).
    """

    def __init__(self, problem: str, param: str = "kind") -> None:
        super().__init__(problem)
        self.problem = problem
        self.param = param

    def __str__(self) -> str:
        return self.problem


class CassetteError(FakeUpstreamError):
    """A cassette could not be loaded: it names the file, the place and what was expected."""

    def __init__(
        self,
        problem: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = None if path is None else Path(path)
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return self._describe(str(self.path) if self.path is not None else "<cassette>")

    def public(self) -> str:
        """The message naming the file without its directory, for HTTP answers."""
        return self._describe(self.path.name if self.path is not None else "<cassette>")

    def _describe(self, where: str) -> str:
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.problem}"


class CassetteNotFound(FakeUpstreamError, LookupError):
    """No cassette has that name; the message lists the ones that exist."""

    def __init__(self, name: str, available: Sequence[str], directory: Path | None = None) -> None:
        super().__init__(name)
        self.name = name
        self.available = tuple(available)
        self.directory = directory

    def __str__(self) -> str:
        where = f" in {self.directory}" if self.directory is not None else ""
        known = ", ".join(self.available) if self.available else "(none)"
        return f"no cassette named {self.name!r}{where}; available: {known}"

    def public(self) -> str:
        """The message without the directory, for HTTP answers."""
        known = ", ".join(self.available) if self.available else "(none)"
        return f"no cassette named {self.name!r}; available: {known}"


class RecordError(FakeUpstreamError):
    """Recording could not start or its result could not be saved."""

    def public(self, directory: Path) -> str:
        """The message with files named relative to ``directory`` (the cassettes'), for
        reports and HTTP answers, which never show where files are."""
        prefix = str(directory / "_")[:-1]  # the directory and its separator
        return str(self).replace(prefix, "").replace(str(directory), "<cassette dir>")


class SecretLeakError(RecordError):
    """The leak guard refused to write a cassette that still holds a secret."""

    def __init__(self, path: Path, findings: Sequence[str]) -> None:
        super().__init__(str(path))
        self.path = path
        self.findings = tuple(findings)

    def __str__(self) -> str:
        lines = "\n".join(f"  - {finding}" for finding in self.findings)
        return f"refused to write {self.path}: it would contain secrets:\n{lines}"


class ReplayFailure(FakeUpstreamError, AssertionError):
    """A replay did not go as the cassette says; pytest reports it as a failure."""


class MismatchError(ReplayFailure):
    """Client frames that did not match the cassette, with their differences."""

    def __init__(self, details: Sequence[str]) -> None:
        super().__init__("\n".join(details))
        self.details = tuple(details)

    def __str__(self) -> str:
        return "the client did not send what the cassette expected:\n" + "\n".join(self.details)


class UnplayedError(ReplayFailure):
    """Cassette steps that never played because the client stopped short."""

    def __init__(self, details: Sequence[str]) -> None:
        super().__init__("\n".join(details))
        self.details = tuple(details)

    def __str__(self) -> str:
        return "the cassette was not played to the end:\n" + "\n".join(self.details)
