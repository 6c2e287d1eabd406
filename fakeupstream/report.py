"""What happened on each connection: frames played, mismatches, steps left unplayed.

The replay engine fills a :class:`ConnectionReport`; the server serves reports
as JSON (``GET /__fakeupstream/report``) and the pytest plugin turns their
failures into test failures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from .exceptions import MismatchError, UnplayedError
from .faults import FiredFault

__all__ = [
    "EXCERPT_CHARS",
    "MAX_DIFFERENCES",
    "MAX_EMULATED",
    "MAX_MISMATCHES",
    "MAX_PROTOCOL_ERRORS",
    "ConnectionReport",
    "Excerpt",
    "Mismatch",
    "Outcome",
    "Unplayed",
    "UpgradeSeen",
    "verify",
]

# A report lives as long as the server (or until a reset) and is served as JSON, so
# what one connection can make it hold is bounded: a client sending a thousand 1 MB
# frames the cassette does not expect leaves a few kilobytes, not a gigabyte.
MAX_MISMATCHES = 100
"""Mismatches kept per connection; the rest are counted in ``mismatches_dropped``."""
MAX_PROTOCOL_ERRORS = 100
"""Protocol errors kept per connection; the rest are counted in ``protocol_errors_dropped``."""
MAX_DIFFERENCES = 50
"""Difference lines kept per mismatch; one last line says how many more there were."""
MAX_EMULATED = 100
"""Emulated events noted per connection; the rest are counted in ``emulated_dropped``."""
EXCERPT_CHARS = 2048
"""A frame longer than this (as compact JSON) is kept as an :class:`Excerpt`."""


class Outcome(StrEnum):
    """How a connection went; set only through the :class:`ConnectionReport` methods."""

    OPEN = "open"
    """Planned, not decided yet."""
    REPLAYED = "replayed"
    """The cassette's timeline ran."""
    ANSWERED = "answered"
    """A handshake rule or the GA emulation answered (an error event and a close)."""
    REFUSED = "refused"
    """An HTTP status instead of the upgrade, or the handshake never completed."""
    RECORDING = "recording"
    """Relayed to the real upstream, not saved yet."""
    RECORDED = "recorded"
    """Relayed and saved."""
    NOT_RECORDED = "not recorded"
    """Relayed, but the save failed (the server's ``errors`` say why)."""


@dataclass(frozen=True, slots=True)
class Excerpt:
    """The start of a frame too large to keep whole, with its size and digest.

    Attributes:
        excerpt: the first :data:`EXCERPT_CHARS` characters of its compact JSON.
        size: the length of that JSON, in UTF-8 bytes.
        sha256: its SHA-256, hex, to tell two large frames apart.
    """

    excerpt: str
    size: int
    sha256: str

    @classmethod
    def of(cls, value: Any) -> Any:
        """``value`` itself when small, else its :class:`Excerpt`."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str) and len(value) <= EXCERPT_CHARS:
            return value
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
        if len(text) <= EXCERPT_CHARS:
            return value
        data = text.encode("utf-8", "surrogatepass")
        return cls(text[:EXCERPT_CHARS], len(data), hashlib.sha256(data).hexdigest())


@dataclass
class Mismatch:
    """A client frame the cassette did not expect (or a handshake that differed).

    Attributes:
        what: short description, e.g. ``client frame`` or ``handshake query``.
        step: timeline index of the expected step, if there was one.
        line: the cassette line of that step.
        expected: the recorded frame (or value).
        actual: what arrived.
        differences: one line per difference.
        hint: extra advice, e.g. that the frame matches a later step.
    """

    what: str
    step: int | None
    line: int | None
    expected: Any
    actual: Any
    differences: list[str]
    hint: str = ""

    def describe(self) -> str:
        """A readable multi-line account of the mismatch."""
        where = "" if self.step is None else f" at step {self.step}"
        if self.line is not None:
            where += f" (line {self.line})"
        lines = [f"{self.what}{where}:"]
        lines.extend(f"    {difference}" for difference in self.differences)
        if self.hint:
            lines.append(f"    hint: {self.hint}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Unplayed:
    """A timeline step that never happened (shared by every connection that skipped it)."""

    step: int
    line: int | None
    direction: str
    summary: str

    def describe(self) -> str:
        """One line: which step, who, what."""
        where = f"step {self.step}" + ("" if self.line is None else f" (line {self.line})")
        verb = "never sent by the client" if self.direction == "client" else "never played"
        return f"{where}: {self.direction} {self.summary} {verb}"


@dataclass(frozen=True)
class UpgradeSeen:
    """The upgrade request as it arrived, with every credential masked.

    So a test can assert what a gateway sent upstream (no ``OpenAI-Beta``, the
    right ``model``...). Built by :func:`fakeupstream.upgrade.UpgradeRequest.seen`.

    Attributes:
        path: the request path as sent (with any ``/cassettes/<name>`` prefix).
        query: the query parameters in order; key-bearing ones masked.
        headers: the headers in order, names as sent; credential values masked.
        subprotocols: the offered subprotocols; a key in one is masked.
    """

    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any letter case), or ``None``."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass
class ConnectionReport:
    """Everything the fake knows about one connection.

    ``outcome`` (an :class:`Outcome`) changes only through the methods below, so
    every transition is named and ``finished`` is set with it.
    """

    id: int
    cassette: str | None
    path: str
    outcome: Outcome = Outcome.OPEN
    episode: int = 0
    total: int = 0
    played: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    unplayed: list[Unplayed] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)
    mismatches_dropped: int = 0
    """Mismatches beyond :data:`MAX_MISMATCHES`, counted but not kept."""
    protocol_errors_dropped: int = 0
    """Protocol errors beyond :data:`MAX_PROTOCOL_ERRORS`, counted but not kept."""
    answered_by: str | None = None
    close_code: int | None = None
    close_reason: str | None = None
    closed_by: str | None = None
    finished: bool = False
    faults: list[FiredFault] = field(default_factory=list)
    """The faults that fired on this connection, in order."""
    request: UpgradeSeen | None = None
    emulated: list[str] = field(default_factory=list)
    """Client events the cassette did not expect that the GA session model answered
    (or recorded housekeeping the client skipped); not failures."""
    emulated_dropped: int = 0

    # -- transitions --------------------------------------------------------------------

    def refuse(self, why: str | None = None, *, answered_by: str | None = None) -> None:
        """The upgrade was refused (or never completed); ``why`` becomes the close reason."""
        self.outcome, self.finished = Outcome.REFUSED, True
        if why is not None:
            self.close_reason = why
        if answered_by is not None:
            self.answered_by = answered_by

    def answer(self, why: str) -> None:
        """A handshake rule or the GA emulation answers instead of the timeline."""
        self.outcome, self.answered_by = Outcome.ANSWERED, why

    def replay(self) -> None:
        """The timeline is replayed."""
        self.outcome = Outcome.REPLAYED

    def start_recording(self) -> None:
        """The connection is relayed to the real upstream."""
        self.outcome = Outcome.RECORDING

    def recorded(self, frames: int) -> None:
        """The relayed connection was saved with ``frames`` frames."""
        self.outcome = Outcome.RECORDED
        self.total = self.played = frames

    def not_recorded(self, problem: str) -> None:
        """The relayed connection could not be saved."""
        self.outcome = Outcome.NOT_RECORDED
        self.protocol_errors.append(f"not recorded: {problem}")

    # -- bounded records ----------------------------------------------------------------

    def add_mismatch(self, mismatch: Mismatch) -> None:
        """Keep ``mismatch`` with large frames cut to an :class:`Excerpt`; past
        :data:`MAX_MISMATCHES`, only count it."""
        if len(self.mismatches) >= MAX_MISMATCHES:
            self.mismatches_dropped += 1
            return
        differences = mismatch.differences
        if len(differences) > MAX_DIFFERENCES:
            more = len(differences) - MAX_DIFFERENCES
            differences = [*differences[:MAX_DIFFERENCES], f"... and {more} more differences"]
        self.mismatches.append(
            replace(
                mismatch,
                expected=Excerpt.of(mismatch.expected),
                actual=Excerpt.of(mismatch.actual),
                differences=[_cut(line) for line in differences],
            )
        )

    def add_emulated(self, what: str) -> None:
        """Note an event the session model or a rule answered; past :data:`MAX_EMULATED`,
        only count it (a client may send housekeeping events without end)."""
        if len(self.emulated) >= MAX_EMULATED:
            self.emulated_dropped += 1
            return
        self.emulated.append(_cut(what))

    def add_protocol_error(self, what: str) -> None:
        """Keep ``what``; past :data:`MAX_PROTOCOL_ERRORS`, only count it."""
        if len(self.protocol_errors) >= MAX_PROTOCOL_ERRORS:
            self.protocol_errors_dropped += 1
            return
        self.protocol_errors.append(_cut(what))

    # -- reading ----------------------------------------------------------------------

    def failures(self) -> list[str]:
        """Readable descriptions of the mismatches and unplayed steps."""
        return self.described_mismatches() + [u.describe() for u in self.unplayed]

    def described_mismatches(self) -> list[str]:
        """Readable descriptions of the mismatches, and how many more were only counted."""
        found = [m.describe() for m in self.mismatches]
        if self.mismatches_dropped:
            found.append(f"... and {self.mismatches_dropped} more unexpected client frames")
        return found

    def title(self) -> str:
        """``connection N (cassette 'x', /path)``."""
        return f"connection {self.id} (cassette {self.cassette!r}, {self.path})"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _cut(line: str) -> str:
    # A difference line quotes values; one quoting a 1 MB string is cut like a frame.
    if len(line) <= EXCERPT_CHARS:
        return line
    return f"{line[:EXCERPT_CHARS]}... ({len(line)} characters)"


def verify(
    reports: Sequence[ConnectionReport], *, mismatches: bool = True, unplayed: bool = True
) -> None:
    """Raise when a connection went other than its cassette says.

    Args:
        reports: the connections to check.
        mismatches: fail on client frames (or upgrade requests) the cassette did not expect.
        unplayed: fail on cassette steps that never happened.

    Raises:
        MismatchError: some client frame did not match (checked first: it usually
            explains the unplayed steps too).
        UnplayedError: some cassette steps never played.
    """
    found = [
        f"{report.title()}:\n  " + "\n  ".join(report.described_mismatches())
        for report in reports
        if report.mismatches
    ]
    if mismatches and found:
        raise MismatchError(found)
    left = [
        f"{report.title()}:\n  " + "\n  ".join(u.describe() for u in report.unplayed)
        for report in reports
        if report.unplayed
    ]
    if unplayed and left:
        raise UnplayedError(left)
