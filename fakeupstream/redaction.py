"""Keep secrets out of cassettes, reports and logs.

Two layers, because one is not enough (vcrpy #569, betamax #42, Polly #347):

1. :class:`Redactor` rewrites what is recorded: ephemeral client secrets
   (``client_secret.value``, any ``ek_...`` value), any value that is an
   ``sk-...`` key, and every registered secret (the real key, the client's key)
   wherever it appears, become placeholders. Header and query-parameter names
   compare in any letter case (:func:`is_secret_header`, :func:`is_secret_param`).
2. :func:`find_leaks`, the leak guard, scans the serialized cassette for key
   shapes and for the registered values, so a save that would still hold one is
   refused. A key shape *inside* a longer text (a transcript quoting a key, say)
   is left for the guard rather than rewritten: refusing with the line number is
   safer than silently editing content a test may depend on.

Findings and log lines never show a secret: :func:`mask` keeps a short prefix.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "EPHEMERAL_PLACEHOLDER",
    "KEY_SUBPROTOCOL",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "Redactor",
    "ephemeral_keys",
    "find_leaks",
    "find_leaks_in_bytes",
    "is_secret_header",
    "is_secret_param",
    "mask",
    "redact_target",
    "redact_url",
]

REDACTED = "REDACTED"
EPHEMERAL_PLACEHOLDER = "ek_REDACTED"
# Browsers cannot set headers, so they carry the key in a subprotocol (reference §1.4).
KEY_SUBPROTOCOL = "openai-insecure-api-key."
# Registered values shorter than this are ignored: replacing every "abc" in a
# transcript would wreck the cassette, and no real credential is that short.
MIN_SECRET_LENGTH = 8

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

# Key shapes. The redactor rewrites values that *are* a key; the guard finds them anywhere.
# Each starts where no word character (or base64 character) precedes it, so that "task-…",
# "disk-…" or a run inside base64 audio is never taken for a key.
_API_KEY = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{16,}")
_EPHEMERAL_KEY = re.compile(r"ek_[A-Za-z0-9]{16,}")
# `\s+`, not a space: the YAML dumper may fold a long string between the two words.
_BEARER = re.compile(r"Bearer\s+([A-Za-z0-9._-]{8,})")
_B = r"(?<![A-Za-z0-9+/_-])"  # no key character or base64 character before
_E = r"(?![A-Za-z0-9+/_-])"  # and none after
# Other providers' and cloud vendors' keys, by their documented prefixes and lengths.
# Listed after the OpenAI shapes: at the same place, the more specific name wins.
_VENDOR_SHAPES = tuple(
    (re.compile(pattern), what)
    for pattern, what in (
        (_B + r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}" + _E, "an AWS access key"),
        (
            r"(?i:aws.{0,24}secret.{0,24}?[=:]\s*[\"']?)([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
            "an AWS secret key",
        ),
        (_B + r"gh[pousr]_[A-Za-z0-9]{36,}" + _E, "a GitHub token"),
        (_B + r"github_pat_[A-Za-z0-9_]{60,}" + _E, "a GitHub token"),
        (_B + r"AIza[0-9A-Za-z_-]{35}" + _E, "a Google API key"),
        (_B + r"sk-ant-[A-Za-z0-9_-]{20,}", "an Anthropic API key"),
        (_B + r"xox[abposre]-[A-Za-z0-9-]{10,}", "a Slack token"),
        (_B + r"[sr]k_live_[A-Za-z0-9]{20,}" + _E, "a Stripe live key"),
        (_B + r"glpat-[A-Za-z0-9_-]{20,}" + _E, "a GitLab token"),
        (_B + r"hf_[A-Za-z]{34,}" + _E, "a Hugging Face token"),
        (_B + r"npm_[A-Za-z0-9]{36}" + _E, "an npm token"),
        (_B + r"gsk_[A-Za-z0-9]{48,}" + _E, "a Groq API key"),
        (_B + r"xai-[A-Za-z0-9]{60,}" + _E, "an xAI API key"),
        (r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----", "a private key"),
    )
)
_SHAPES = (
    (_API_KEY, "an OpenAI API key"),
    (_EPHEMERAL_KEY, "an ephemeral client secret"),
    (_BEARER, "a bearer token"),
    *_VENDOR_SHAPES,
)


@functools.lru_cache(maxsize=1024)  # every connection asks about the same few names
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
    # No parameter name can be key-bearing if no secret word appears in the query at all,
    # and none is hidden in a percent-escape (`api_%6Bey`): then the target is returned as
    # it came (the common case, checked once per connection).
    if not parts.query or ("%" not in parts.query and not _SECRET_WORDS.search(parts.query)):
        return target
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    masked = [(name, REDACTED if is_secret_param(name) else value) for name, value in pairs]
    return urlunsplit(parts._replace(query=urlencode(masked, safe="/:")))


def redact_url(url: str) -> str:
    """A URL safe to log or store: no ``user:password@``, key-bearing parameters masked."""
    parts = urlsplit(redact_target(url))
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc))


def ephemeral_keys(text: str) -> list[str]:
    """The ephemeral keys (``ek_...``) in ``text``, in order: those an upstream minted."""
    return _EPHEMERAL_KEY.findall(text)


def mask(secret: str) -> str:
    """Show a secret as a short prefix and an ellipsis (``sk-ab…``), never whole."""
    keep = min(5, len(secret) // 3)
    return secret[:keep] + "…"


class Redactor:
    """Rewrites recorded data so that no credential reaches a cassette.

    Args:
        secrets: values to replace wherever they appear (the real key, say).
            Values shorter than :data:`MIN_SECRET_LENGTH` are ignored.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add_secret(secret)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The registered values, longest first."""
        return tuple(self._secrets)

    def add_secret(self, value: str) -> None:
        """Register ``value`` (e.g. the key a client connected with) for replacement."""
        value = value.strip()
        if len(value) >= MIN_SECRET_LENGTH and value not in self._secrets:
            self._secrets.append(value)
            # Longest first, so a key that contains another is replaced whole.
            self._secrets.sort(key=len, reverse=True)

    def text(self, value: str) -> str:
        """Replace the registered secrets in a string, and the string if it is a key."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        if _EPHEMERAL_KEY.fullmatch(value):
            return EPHEMERAL_PLACEHOLDER
        if _API_KEY.fullmatch(value):
            return REDACTED
        return value

    def binary(self, value: bytes) -> bytes:
        """Replace the registered secrets in a binary frame."""
        for secret in self._secrets:
            encoded = secret.encode()
            if encoded in value:
                value = value.replace(encoded, REDACTED.encode())
        return value

    def value(self, data: Any) -> Any:
        """Return a redacted copy of a JSON value (an event, an HTTP error body...)."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, list):
            return [self.value(item) for item in data]
        if isinstance(data, dict):
            out = {}
            for key, item in data.items():
                if key == "client_secret":
                    out[key] = self._client_secret(item)
                else:
                    out[key] = self.value(item)
            return out
        return data

    def _client_secret(self, item: Any) -> Any:
        # POST /v1/realtime/client_secrets answers {"value": "ek_...", "expires_at": ...};
        # older shapes nest it as {"client_secret": {"value": ...}} or give it as a string.
        if isinstance(item, str):
            return EPHEMERAL_PLACEHOLDER
        if isinstance(item, dict):
            return {
                key: EPHEMERAL_PLACEHOLDER
                if key == "value" and isinstance(value, str)
                else self.value(value)
                for key, value in item.items()
            }
        return self.value(item)


def find_leaks(text: str, secrets: Iterable[str] = ()) -> list[str]:
    """The leak guard: find credentials in serialized text, without showing them.

    Args:
        text: the serialized cassette (or anything about to be written).
        secrets: exact values that must not appear (the real key, the client's key).
            Values shorter than :data:`MIN_SECRET_LENGTH` are ignored.

    Returns:
        One line per finding, ``line N: what (masked prefix)``, in text order;
        empty when the text is clean.
    """
    found = _scan(text, secrets)
    return [
        f"line {text.count(chr(10), 0, offset) + 1}: {what}"
        for offset, what in sorted(found.items())
    ]


def find_leaks_in_bytes(data: bytes, secrets: Iterable[str] = ()) -> list[str]:
    """The leak guard for binary payloads (binary frames, sidecars), once decoded.

    A key sent in a binary frame is base64 in the cassette, where no key shape is
    visible; this looks at the bytes themselves.

    Returns:
        One line per finding, ``byte N: what (masked prefix)``; empty when clean.
    """
    # Latin-1 maps each byte to one character, so offsets are byte offsets and
    # any ASCII key inside binary data reads exactly as it would in text.
    found = _scan(data.decode("latin-1"), secrets)
    return [f"byte {offset}: {what}" for offset, what in sorted(found.items())]


def _scan(text: str, secrets: Iterable[str]) -> dict[int, str]:
    found: dict[int, str] = {}  # offset -> what; one finding per place
    for pattern, what in _SHAPES:
        for match in pattern.finditer(text):
            token = match.group(match.lastindex or 0)
            if token == REDACTED:
                continue
            bearer = pattern is _BEARER
            shown = mask(token)
            found[match.start()] = f"{what} ({'Bearer ' if bearer else ''}{shown})"
    for secret in {value.strip() for value in secrets}:
        if len(secret) < MIN_SECRET_LENGTH:
            continue
        start = text.find(secret)
        while start >= 0:
            # The exact value says more than its shape (it is a key in use), so it wins.
            found[start] = f"a secret in use ({mask(secret)})"
            start = text.find(secret, start + 1)
    return found
