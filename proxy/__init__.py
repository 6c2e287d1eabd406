"""A realtime gateway for ``/v1/realtime``, and the worked example of testing one with fakeupstream.

It does what a production gateway does for the OpenAI Realtime API (GA shape):
authenticate the client, open the upstream WebSocket before accepting the
client, relay frames both ways with backpressure, and pass close codes and
reasons through so that upstream errors reach the client intact. Run it with
``python -m proxy --upstream http://HOST:PORT``.
"""

from proxy.config import (
    ConfigError,
    ProxyConfig,
    UpstreamTarget,
    build_upstream_target,
    parse_upstream_header,
    resolve_authorization,
)
from proxy.gateway import Gateway
from proxy.relay import RelayResult, forwardable_close

__all__ = [
    "ConfigError",
    "Gateway",
    "ProxyConfig",
    "RelayResult",
    "UpstreamTarget",
    "build_upstream_target",
    "forwardable_close",
    "parse_upstream_header",
    "resolve_authorization",
]
