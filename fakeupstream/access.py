"""Who may use the fake, the recorder and the admin API (sans-I/O).

On a developer's machine the threat is the browser: any web page can open a
WebSocket to ``localhost`` (CORS does not apply to WebSockets) or POST to it, and
the recorder relays with the user's real API key. Browsers always send ``Origin``;
SDKs, gateways and test clients do not. So, in this order:

1. a request with an ``Origin`` that is not loopback (``http://localhost:3000``,
   ``http://127.0.0.1``, ``http://[::1]`` are) is refused with 403, unless that
   origin is allowed (``--allow-origin``; ``*`` allows any);
2. an admin request whose ``Host`` is a dotted DNS name (other than ``*.localhost``)
   is refused with 403: a page on ``evil.example`` that rebinds its name to 127.0.0.1
   still sends ``Host: evil.example``. Loopback names, IP literals and single-label
   names (a container's service name, ``fakeupstream:8765``) cannot be rebound by a
   web page, and are answered;
3. with a client token set (``--client-token``), a connection that would be
   recorded must present it, in the ``X-FakeUpstream-Token`` header or the
   ``fakeupstream_token`` query parameter; replay needs no token.

Without an ``Origin`` and without a token set, nothing changes: zero setup for a
gateway in the path.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from .responses import HttpResponse, error_response

__all__ = [
    "CLIENT_TOKEN_ENV",
    "TOKEN_HEADER",
    "TOKEN_PARAM",
    "AccessPolicy",
    "is_loopback_origin",
    "is_trusted_host",
]

CLIENT_TOKEN_ENV = "FAKEUPSTREAM_CLIENT_TOKEN"
"""Where ``fakeupstream record`` reads the client token when ``--client-token`` is not given."""
TOKEN_HEADER = "X-FakeUpstream-Token"
TOKEN_PARAM = "fakeupstream_token"


def _is_loopback_name(host: str) -> bool:
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_origin(origin: str) -> bool:
    """Tell whether ``origin`` (an ``Origin`` header) is a page served from this machine."""
    try:
        parts = urlsplit(origin.strip())
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and host is not None and _is_loopback_name(host)


def is_trusted_host(host: str) -> bool:
    """Tell whether a ``Host`` header is one no web page can rebind to this machine.

    Loopback names, IP literals (``Host: 10.0.0.5:8765``, a server bound to a LAN
    address on purpose) and single-label names (``fakeupstream``, a service in a
    compose network) are; a dotted DNS name other than ``*.localhost`` is not.
    """
    try:
        name = urlsplit("//" + host.strip()).hostname
    except ValueError:
        return False
    if name is None:
        return False
    if _is_loopback_name(name) or "." not in name.strip("[]"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Which requests the server answers (see the module docstring for the rules).

    Attributes:
        allow_origins: origins allowed besides loopback ones, exactly as browsers send
            them (``https://app.example``); ``"*"`` allows any origin.
        client_token: when set, recorded connections must present it.
    """

    allow_origins: tuple[str, ...] = ()
    client_token: str | None = field(default=None, repr=False)

    def origin_allowed(self, origin: str | None) -> bool:
        """Tell whether a request with this ``Origin`` (``None``: none) may go on."""
        if origin is None or is_loopback_origin(origin) or "*" in self.allow_origins:
            return True
        return origin.strip().rstrip("/").lower() in {
            allowed.strip().rstrip("/").lower() for allowed in self.allow_origins
        }

    def check_origin(self, headers: Sequence[tuple[str, str]]) -> HttpResponse | None:
        """``None`` if the request's ``Origin`` is allowed, else the 403 to answer."""
        return self.check_origin_of(_header(headers, "Origin"))

    def check_origin_of(self, origin: str | None) -> HttpResponse | None:
        """:meth:`check_origin` for a request whose ``Origin`` (``None``: none) is known."""
        if self.origin_allowed(origin):
            return None
        return error_response(
            403,
            f"requests from the web origin {origin!r} are refused: fakeupstream answers "
            "only loopback origins and clients that send none (start it with "
            "--allow-origin ORIGIN to allow this one)",
            "origin_not_allowed",
        )

    def check_admin(self, headers: Sequence[tuple[str, str]]) -> HttpResponse | None:
        """``None`` if an admin request may go on, else the 403 to answer."""
        refused = self.check_origin(headers)
        if refused is not None:
            return refused
        host = _header(headers, "Host")
        if host is None or is_trusted_host(host):
            return None
        return error_response(
            403,
            f"admin requests for host {host!r} are refused: use the loopback address, "
            "localhost or an IP address (a DNS name may have been rebound to this machine)",
            "host_not_allowed",
        )

    def check_token(self, target: str, headers: Sequence[tuple[str, str]]) -> HttpResponse | None:
        """``None`` if no token is set or the request presents it, else the 403."""
        if self.client_token is None:
            return None
        presented = _header(headers, TOKEN_HEADER)
        if presented is None:
            try:
                query = parse_qsl(urlsplit(target).query, keep_blank_values=True)
            except ValueError:
                query = []
            presented = next((value for name, value in query if name == TOKEN_PARAM), None)
        if presented is not None and hmac.compare_digest(
            presented.encode("utf-8", "surrogateescape"),
            self.client_token.encode("utf-8", "surrogateescape"),
        ):
            return None
        return error_response(
            403,
            "this recorder relays only its own clients: send the client token in the "
            f"{TOKEN_HEADER} header or the {TOKEN_PARAM} query parameter",
            "client_token_required",
        )
