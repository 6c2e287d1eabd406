"""Keep secrets out of cassettes, reports and logs.

Header and query-parameter names compare in any letter case. Values that look
like keys are masked wherever they are shown.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "is_secret_header",
    "is_secret_param",
    "redact_target",
]

REDACTED = "REDACTED"

_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
        "x-api-key",
        "api-key",
    }
)
_SECRET_WORDS = re.compile(r"(key|secret|token|password|auth|credential|signature)", re.I)


def is_secret_header(name: str) -> bool:
    """Tell whether a header may carry a credential (``Authorization``, ``*-api-key``, ...)."""
    lowered = name.lower()
    return lowered in _SECRET_HEADERS or bool(_SECRET_WORDS.search(lowered))


def is_secret_param(name: str) -> bool:
    """Tell whether a query parameter may carry a credential (``api_key``, ``token``, ...)."""
    return bool(_SECRET_WORDS.search(name))


def redact_target(target: str) -> str:
    """Mask the values of key-bearing query parameters in a request target."""
    parts = urlsplit(target)
    if not parts.query:
        return target
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    masked = [(name, REDACTED if is_secret_param(name) else value) for name, value in pairs]
    return urlunsplit(parts._replace(query=urlencode(masked, safe="/:")))
