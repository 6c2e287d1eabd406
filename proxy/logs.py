"""Logger names, the TRACE level, and the filter that keeps API keys out of logs.

``websockets`` logs every handshake header at DEBUG, ``Authorization``
included, on both hops. The gateway therefore gives each hop its own logger
(``proxy.ws.client`` and ``proxy.ws.upstream``) with :class:`RedactSecrets`
attached, so turning on DEBUG to chase a bug never writes a key to a log.
"""

from __future__ import annotations

import logging

__all__ = [
    "TRACE",
    "RedactSecrets",
    "client_ws_logger",
    "session_logger",
    "upstream_ws_logger",
]

#: Below DEBUG: one line per high-frequency event (deltas, audio appends).
TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# websockets' format strings for one handshake header, sent (">") or received ("<").
_HEADER_FORMATS = frozenset({"> %s: %s", "< %s: %s"})
_SECRET_WORDS = ("auth", "key", "secret", "token", "cookie")
_SUBPROTOCOL_KEY = "openai-insecure-api-key."


class RedactSecrets(logging.Filter):
    """Replace the value of credential-bearing handshake headers with ``<redacted>``.

    A header counts as a credential when its name mentions auth, key, secret,
    token or cookie (``Authorization``, ``api-key``, ``Set-Cookie``, ...), or
    when it is a ``Sec-WebSocket-Protocol`` carrying a browser API key.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        if record.msg in _HEADER_FORMATS and isinstance(record.args, tuple):
            name, value = record.args
            if _is_secret(str(name), str(value)):
                record.args = (name, "<redacted>")
        return True


def _is_secret(name: str, value: str) -> bool:
    lowered = name.lower()
    if any(word in lowered for word in _SECRET_WORDS):
        return True
    return lowered == "sec-websocket-protocol" and _SUBPROTOCOL_KEY in value


def _redacted(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
    return logger


def session_logger() -> logging.Logger:
    """The gateway's own logger: session start/end at INFO, events at DEBUG/TRACE."""
    return logging.getLogger("proxy.session")


def client_ws_logger() -> logging.Logger:
    """Logger handed to ``websockets`` for the client-facing server."""
    return _redacted("proxy.ws.client")


def upstream_ws_logger() -> logging.Logger:
    """Logger handed to ``websockets`` for the upstream connections."""
    return _redacted("proxy.ws.upstream")
