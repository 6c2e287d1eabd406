"""Logger names, the TRACE level, and the filter that keeps API keys out of logs.

``websockets`` logs every handshake header at DEBUG, ``Authorization``
included, on both hops, and the request line with its query string (where some
clients put ``?api_key=...``). The gateway therefore gives each hop its own logger
(``proxy.ws.client`` and ``proxy.ws.upstream``), and its own ``proxy.session``,
with :class:`RedactSecrets` attached, so turning on DEBUG (or TRACE) to chase a
bug never writes a key to a log.
"""

from __future__ import annotations

import logging
import re

from websockets.exceptions import InvalidMessage

__all__ = [
    "TRACE",
    "RedactSecrets",
    "client_ws_logger",
    "redact_queries",
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
# A query string inside a log message: from "?" to the next blank or quote.
_QUERY = re.compile(r"\?[^\s\"'<>]*")
_PARAM = re.compile(r"(?P<name>[^=&;#]*)=(?P<value>[^&;#]*)")
# Parameters whose values say nothing secret and help reading a log.
_PUBLIC_PARAMS = frozenset({"model"})


class RedactSecrets(logging.Filter):
    """Replace the value of credential-bearing handshake headers with ``<redacted>``.

    A header counts as a credential when its name mentions auth, key, secret,
    token or cookie (``Authorization``, ``api-key``, ``Set-Cookie``, ...), or
    when it is a ``Sec-WebSocket-Protocol`` carrying a browser API key.

    Every query parameter value but ``model``'s is redacted too, wherever a query
    string appears in a message (``?api_key=sk-...`` → ``?api_key=<redacted>``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        if record.msg in _HEADER_FORMATS and isinstance(record.args, tuple):
            name, value = record.args
            if _is_secret(str(name), str(value)):
                record.args = (name, "<redacted>")
                return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: logging reports it itself
            return True
        if "?" in message:
            redacted = redact_queries(message)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


def redact_queries(text: str) -> str:
    """``text`` with the value of every query parameter but ``model`` redacted."""
    return _QUERY.sub(lambda found: _PARAM.sub(_redact_param, found.group(0)), text)


def _redact_param(found: re.Match[str]) -> str:
    name = found.group("name").lstrip("?")
    if name.lower() in _PUBLIC_PARAMS or not found.group("value"):
        return found.group(0)
    return found.group(0)[: found.start("value") - found.start()] + "<redacted>"


def _is_secret(name: str, value: str) -> bool:
    lowered = name.lower()
    if any(word in lowered for word in _SECRET_WORDS):
        return True
    return lowered == "sec-websocket-protocol" and _SUBPROTOCOL_KEY in value


class QuietEarlyDisconnects(logging.Filter):
    """Drop websockets' report of a client that closed before sending a request.

    websockets 14 and 15 log it at ERROR with a traceback ("opening handshake
    failed": ``InvalidMessage`` caused by ``EOFError``), 16 and later do not. It
    follows every REST request the gateway forwards itself, and every TCP probe.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (
            record.msg == "opening handshake failed"
            and isinstance(exc, InvalidMessage)
            and isinstance(exc.__cause__, EOFError)
        )


def _redacted(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
    if not any(isinstance(f, QuietEarlyDisconnects) for f in logger.filters):
        logger.addFilter(QuietEarlyDisconnects())
    return logger


def session_logger() -> logging.Logger:
    """The gateway's own logger: session start/end at INFO, events at DEBUG/TRACE."""
    return _redacted("proxy.session")


def client_ws_logger() -> logging.Logger:
    """Logger handed to ``websockets`` for the client-facing server."""
    return _redacted("proxy.ws.client")


def upstream_ws_logger() -> logging.Logger:
    """Logger handed to ``websockets`` for the upstream connections."""
    return _redacted("proxy.ws.upstream")
