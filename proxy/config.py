"""Gateway configuration and the pure functions that turn it into an upstream request.

Nothing here touches the network, the clock or the process environment (the
environment is passed in), so every rule about what goes upstream is unit-tested
with plain values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "REALTIME_PATH",
    "ConfigError",
    "ProxyConfig",
    "UpstreamTarget",
    "build_upstream_target",
    "parse_upstream_header",
    "resolve_authorization",
]

#: The only path the gateway serves, and the path it appends to the upstream base.
REALTIME_PATH = "/v1/realtime"

#: The largest message relayed by default, either way: the GA API takes audio events
#: of up to ~15 MiB, and a frame over the limit is refused before it is buffered.
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024

_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}

# RFC 9110 token: what a header name may contain.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

# Headers that --upstream-header must not set: the WebSocket handshake owns the
# first group, and Authorization comes from the client (or --api-key-env) so a
# configured copy would either duplicate it or silently override the client's key.
_RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "connection",
        "content-length",
        "host",
        "sec-websocket-extensions",
        "sec-websocket-key",
        "sec-websocket-protocol",
        "sec-websocket-version",
        "transfer-encoding",
        "upgrade",
    }
)


class ConfigError(ValueError):
    """Raised for an invalid gateway setting; the message names the setting and the fix."""


@dataclass(frozen=True)
class ProxyConfig:
    """How the gateway reaches its upstream.

    Attributes:
        upstream: Base URL of the upstream, ``http(s)://HOST[:PORT][/prefix]``
            (``ws``/``wss`` are accepted too). ``/v1/realtime`` is appended to it.
        api_key_env: Name of an environment variable holding a fallback API key,
            used when a client sends no ``Authorization`` header.
        upstream_headers: Extra ``(name, value)`` headers sent upstream on every
            connection. Empty by default: see :func:`build_upstream_target`.
        connect_timeout: Seconds allowed for the upstream TCP connect plus the
            WebSocket upgrade before the client gets HTTP 504.
        ping_interval: Seconds between keepalive pings on each hop (client and
            upstream); ``None`` sends none.
        ping_timeout: Seconds a ping may go unanswered before that hop is
            closed (1011) and the other side with it; ``None`` waits forever.
        idle_timeout: Close a session in which no data frame has passed, either
            way, for this many seconds (the client gets 1011); ``None`` (the
            default) never does. A stalled upstream still answers pings, so only
            this catches it.
        close_timeout: Seconds to wait for a peer to finish the closing
            handshake before dropping the TCP connection. After a keepalive
            timeout the gateway waits this long for the dead upstream's socket
            to close, so it adds to the time the client waits for its 1011.
        max_message_size: The largest message (bytes) read from either side; a
            larger one closes that side with 1009 (and the other with 1011), so
            one frame can never make the gateway buffer more than this.
    """

    upstream: str
    api_key_env: str | None = None
    # repr=False: these values may be credentials (``api-key: ...``) and a
    # config object ends up in logs and tracebacks.
    upstream_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    connect_timeout: float = 10.0
    # The websockets defaults: a ping every 20 s, 20 s to answer it.
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    idle_timeout: float | None = None
    close_timeout: float = 10.0
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE

    def __post_init__(self) -> None:
        _split_base(self.upstream)  # validates, raises ConfigError
        if not (math.isfinite(self.connect_timeout) and self.connect_timeout > 0):
            raise ConfigError(
                f"connect timeout must be a positive number of seconds, "
                f"got {self.connect_timeout!r}"
            )
        for name in ("ping_interval", "ping_timeout", "idle_timeout", "close_timeout"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(
                    f"{name.replace('_', ' ')} must be a positive number of seconds "
                    f"(or off), got {value!r}"
                )
        if isinstance(self.max_message_size, bool) or self.max_message_size < 1:
            raise ConfigError(
                f"max message size must be a positive number of bytes, "
                f"got {self.max_message_size!r}"
            )
        if self.api_key_env is not None and not self.api_key_env:
            raise ConfigError("--api-key-env needs the name of an environment variable")
        for name, value in self.upstream_headers:
            _check_header(name, value)


@dataclass(frozen=True)
class UpstreamTarget:
    """The upstream WebSocket URL and the exact handshake headers to send.

    ``repr`` hides the headers: they carry the API key.
    """

    url: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)


def parse_upstream_header(text: str) -> tuple[str, str]:
    """Parse one ``--upstream-header`` argument of the form ``'Name: value'``.

    Args:
        text: The argument as given on the command line.

    Returns:
        The ``(name, value)`` pair, surrounding whitespace stripped.

    Raises:
        ConfigError: If there is no colon, the name is not a valid HTTP header
            name, the value holds a line break, or the header is one the
            gateway sets itself.
    """
    name, sep, value = text.partition(":")
    if not sep:
        raise ConfigError(f"upstream header {text!r} must look like 'Name: value'")
    name, value = name.strip(), value.strip()
    _check_header(name, value)
    return name, value


def _check_header(name: str, value: str) -> None:
    if not _TOKEN.match(name):
        raise ConfigError(f"upstream header name {name!r} is not a valid HTTP header name")
    if "\r" in value or "\n" in value:
        raise ConfigError(f"upstream header {name!r} has a line break in its value")
    if name.lower() in _RESERVED_HEADERS:
        raise ConfigError(
            f"upstream header {name!r} is set by the gateway itself and cannot be configured"
            + (
                " (it comes from the client, or from --api-key-env)"
                if name.lower() == "authorization"
                else ""
            )
        )


def _split_base(upstream: str) -> tuple[str, str, str, str]:
    """Validate the upstream base URL; return (ws scheme, netloc, path prefix, query)."""
    parts = urlsplit(upstream)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ConfigError(
            f"upstream {upstream!r} must start with http://, https://, ws:// or wss://"
        )
    if not parts.hostname:
        raise ConfigError(f"upstream {upstream!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "upstream URL must not carry credentials; clients send Authorization "
            "or use --api-key-env"
        )
    if parts.fragment:
        raise ConfigError(f"upstream {upstream!r} must not have a #fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"upstream {upstream!r} has an invalid port") from exc
    return scheme, parts.netloc, parts.path.rstrip("/"), parts.query


def resolve_authorization(
    client_authorization: str | None,
    config: ProxyConfig,
    environ: Mapping[str, str],
) -> str | None:
    """Choose the ``Authorization`` value to send upstream.

    The client's own header wins, sent as is. Otherwise the fallback key from
    the variable named by ``config.api_key_env`` becomes ``Bearer <key>``. The
    environment is read per connection so a rotated key needs no restart.

    Returns:
        The header value, or ``None`` when there is none (the gateway answers 401).
    """
    if client_authorization and client_authorization.strip():
        return client_authorization
    if config.api_key_env:
        key = environ.get(config.api_key_env, "").strip()
        if key:
            return f"Bearer {key}"
    return None


def build_upstream_target(
    config: ProxyConfig,
    model: str,
    authorization: str,
    *,
    call_id: str | None = None,
    intent: str | None = None,
) -> UpstreamTarget:
    """Build the upstream URL and handshake headers for one client session.

    ``http`` becomes ``ws`` and ``https`` becomes ``wss``; a path prefix on the
    base is kept (``http://h/cassettes/x`` → ``ws://h/cassettes/x/v1/realtime``),
    and so is a query on the base; ``model`` is percent-encoded.

    The headers are ``Authorization`` plus the configured ``upstream_headers``,
    and nothing else. In particular no client header is passed through and
    ``OpenAI-Beta`` is never added: the GA Realtime API answers
    ``OpenAI-Beta: realtime=v1`` with an ``error`` event
    (``beta_api_shape_disabled``) and close 4000, which is the outage this
    gateway exists to avoid. Do not add it back.

    Args:
        config: The gateway configuration.
        model: The model the client asked for (empty: none, for a sideband or
            transcription session).
        authorization: The value from :func:`resolve_authorization`.
        call_id: The WebRTC or SIP call a sideband session attaches to.
        intent: The session intent (``transcription``).

    Returns:
        The target to dial.
    """
    scheme, netloc, prefix, base_query = _split_base(config.upstream)
    wanted = {"model": model, "call_id": call_id, "intent": intent}
    own = urlencode({name: value for name, value in wanted.items() if value})
    query = "&".join(part for part in (base_query, own) if part)
    url = urlunsplit((scheme, netloc, prefix + REALTIME_PATH, query, ""))
    # Authorization and what the operator configured, nothing else: never
    # OpenAI-Beta (the GA API rejects it, see above), never a client header.
    headers = (("Authorization", authorization), *config.upstream_headers)
    return UpstreamTarget(url=url, headers=headers)
