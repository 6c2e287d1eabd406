"""Logging that never shows a key, and the command line's log levels.

``websockets`` logs every request and response header at debug level, and a
key may also travel in a query string or a subprotocol. :class:`RedactSecrets`
masks all of these in the formatted message, whoever logged it.

Two loggers: ``fakeupstream`` (one line per connection at ``INFO``, one line per
frame at ``DEBUG``) and its child ``fakeupstream.websockets``, which the server and
the recorder hand to ``websockets`` for its own handshake and frame logs. Keeping
them apart lets ``-v`` show the frames without websockets' every header.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import TextIO

from websockets.exceptions import InvalidMessage

from ..redaction import REDACTED, is_secret_header
from ..report import ConnectionReport, Outcome

__all__ = [
    "PROTOCOL_LOGGER",
    "QuietEarlyDisconnects",
    "RedactSecrets",
    "cli_logging",
    "connection_line",
    "frame_summary",
    "log_connection",
    "redact_text",
]

_HEADER_LINE = re.compile(
    r"^(?P<prefix>[<>] )?(?P<name>[A-Za-z0-9-]+): (?P<value>.*)$", re.MULTILINE
)
_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic) [^\s,'\"]+"), rf"\1 {REDACTED}"),
    (re.compile(r"openai-insecure-api-key\.[^\s,'\"]+"), f"openai-insecure-api-key.{REDACTED}"),
    (
        re.compile(r"(?i)([?&][^=&\s]*(?:key|token|secret|auth)[^=&\s]*=)[^&\s'\"]+"),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), f"sk-{REDACTED}"),
    (re.compile(r"\bek_[A-Za-z0-9]{8,}"), f"ek_{REDACTED}"),
)


# A line must hold one of these (lowercased) or start like a header line for any
# pattern above to match: most lines, connection lines among them, hold none, and
# checking costs a few substring searches instead of six regular expressions.
_TRIGGERS = ("bearer ", "basic ", "openai-insecure-api-key.", "sk-", "ek_")
_QUERY_WORDS = ("key", "token", "secret", "auth")


def redact_text(text: str) -> str:
    """Mask secret header values, bearer tokens, key-bearing query values and key shapes."""
    lowered = text.lower()
    if (
        any(trigger in lowered for trigger in _TRIGGERS)
        or (("?" in text or "&" in text) and any(word in lowered for word in _QUERY_WORDS))
        or (": " in text and _header_line_in(text))
    ):
        return _mask(text)
    return text


def _header_line_in(text: str) -> bool:
    # A header line starts a line: in one line of text, only at 0 (a quick match).
    if "\n" not in text:
        return _HEADER_LINE.match(text) is not None
    return _HEADER_LINE.search(text) is not None


def _mask(text: str) -> str:
    def header(match: re.Match[str]) -> str:
        if is_secret_header(match["name"]):
            return f"{match['prefix'] or ''}{match['name']}: {REDACTED}"
        return match[0]

    text = _HEADER_LINE.sub(header, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """A filter that rewrites each record's message with :func:`redact_text`.

    A record may meet it twice (on the ``fakeupstream`` logger, then on the command
    line's handler, which also sees what child loggers propagate): it is masked once.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _MASKED, False):
            return True
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        setattr(record, _MASKED, True)
        return True


_MASKED = "_fakeupstream_masked"


class QuietEarlyDisconnects(logging.Filter):
    """Drop websockets' report of a connection that closed before sending a request.

    websockets 14 and 15 log that at ERROR with a traceback ("opening handshake
    failed": ``InvalidMessage`` caused by ``EOFError``); 16 and later stay quiet.
    It happens after every request the front door answers itself (admin, REST) and
    after every TCP-connect health probe: nothing a user must act on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (
            record.msg == "opening handshake failed"
            and isinstance(exc, InvalidMessage)
            and isinstance(exc.__cause__, EOFError)
        )


PROTOCOL_LOGGER = logging.getLogger("fakeupstream.websockets")
"""What ``websockets`` logs for the fake: headers and frames (shown with ``-vv``)."""
# A logger's own filters do not apply to records its children propagate: mask here too.
PROTOCOL_LOGGER.addFilter(RedactSecrets())
PROTOCOL_LOGGER.addFilter(QuietEarlyDisconnects())

_MAX_SUMMARY = 80


def frame_summary(data: str | bytes) -> str:
    """Describe a frame in a few words: its event type and size, never its content."""
    if isinstance(data, bytes):
        return f"binary frame ({len(data)} bytes)"
    try:
        event = json.loads(data)
    except ValueError:
        return f"non-JSON text ({len(data)} chars)"
    kind = event.get("type") if isinstance(event, dict) else None
    name = kind[:_MAX_SUMMARY] if isinstance(kind, str) else "event without a type"
    return f"{name} ({len(data)} chars)"


def connection_line(
    report: ConnectionReport, *, status: int | None = None, report_url: str | None = None
) -> str:
    """One line on how a connection went: cassette, outcome, steps, mismatches, close.

    Args:
        report: the finished connection.
        status: the HTTP status it was refused with, if it was.
        report_url: where the full report is served; named when something went wrong.
    """
    cassette = "no cassette" if report.cassette is None else f"cassette {report.cassette!r}"
    # The path is followed by a space: a masked query value runs to the next one.
    parts = [f"connection {report.id} {report.path} -> {cassette}, {report.outcome.value}"]
    if status is not None:
        parts[0] += f" (HTTP {status})"
    if report.total:
        parts.append(f"{report.played}/{report.total} steps played")
    parts.append(_plural(len(report.mismatches), "mismatch", "mismatches"))
    if report.unplayed:
        parts.append(f"{len(report.unplayed)} unplayed")
    if report.close_code is not None:
        parts.append(f"closed {report.close_code} by {report.closed_by or 'server'}")
    line = ", ".join(parts)
    if report_url is not None and _went_wrong(report):
        line += f"; details: {report_url}"
    return line


def log_connection(
    logger: logging.Logger,
    report: ConnectionReport,
    *,
    status: int | None = None,
    report_url: str | None = None,
) -> None:
    """Log :func:`connection_line`: ``INFO`` when it went as recorded, else ``WARNING``."""
    level = logging.WARNING if _went_wrong(report) else logging.INFO
    if logger.isEnabledFor(level):
        logger.log(level, "%s", connection_line(report, status=status, report_url=report_url))


def _went_wrong(report: ConnectionReport) -> bool:
    bad = (Outcome.REFUSED, Outcome.NOT_RECORDED)
    return bool(report.mismatches or report.unplayed or report.outcome in bad)


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


class _ClockFormatter(logging.Formatter):
    """A formatter whose times have whole seconds: each second is formatted once,
    not once per line (a busy server logs hundreds of connections a second)."""

    _second: int | None = None
    _clock = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._clock = super().formatTime(record, datefmt)
            self._second = second
        return self._clock


@contextlib.contextmanager
def cli_logging(verbosity: int, stream: TextIO | None = None) -> Iterator[None]:
    """Log to ``stream`` (stderr) at the command line's level while the block runs.

    ``verbosity`` -1 (``-q``): errors only; 0: one line per connection; 1 (``-v``):
    also one line per frame; 2 (``-vv``): also websockets' own debug log (headers
    and frames). Only the ``fakeupstream`` loggers are touched, never the root one,
    so asyncio and other libraries stay quiet; every line goes through
    :class:`RedactSecrets`.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_ClockFormatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactSecrets())
    main = logging.getLogger("fakeupstream")
    levels = (main.level, PROTOCOL_LOGGER.level)
    if verbosity < 0:
        main.setLevel(logging.ERROR)
    else:
        main.setLevel(logging.INFO if verbosity == 0 else logging.DEBUG)
    PROTOCOL_LOGGER.setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
    main.addHandler(handler)
    try:
        yield
    finally:
        main.removeHandler(handler)
        main.setLevel(levels[0])
        PROTOCOL_LOGGER.setLevel(levels[1])
