"""Logging that never shows a key.

``websockets`` logs every request and response header at debug level, and a
key may also travel in a query string or a subprotocol. :class:`RedactSecrets`
masks all of these in the formatted message, whoever logged it.
"""

from __future__ import annotations

import logging
import re

from ..redaction import REDACTED, is_secret_header

__all__ = ["RedactSecrets", "redact_text"]

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


def redact_text(text: str) -> str:
    """Mask secret header values, bearer tokens, key-bearing query values and key shapes."""

    def header(match: re.Match[str]) -> str:
        if is_secret_header(match["name"]):
            return f"{match['prefix'] or ''}{match['name']}: {REDACTED}"
        return match[0]

    text = _HEADER_LINE.sub(header, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """A filter that rewrites each record's message with :func:`redact_text`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
