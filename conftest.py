"""This repository's own fixtures: the realtime gateway under test (``proxy/``).

The fake-upstream fixtures come from the fakeupstream pytest plugin, which is
registered only through its ``pytest11`` entry point; registering it here too
would make pytest refuse the double registration.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Protocol

import pytest_asyncio

from proxy import Gateway, ProxyConfig, parse_upstream_header


class ProxyFactory(Protocol):
    """Start a gateway in front of ``upstream``; it stops at the end of the test."""

    def __call__(
        self,
        upstream: str,
        *,
        api_key_env: str | None = None,
        upstream_headers: Sequence[str] = (),
        connect_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        idle_timeout: float | None = None,
        close_timeout: float = 10.0,
    ) -> Awaitable[Gateway]: ...


@pytest_asyncio.fixture(name="proxy")
async def proxy_factory() -> AsyncIterator[ProxyFactory]:
    """Factory fixture (function scope): ``gw = await proxy(fake.http_url, ...)``.

    Takes the same settings as ``python -m proxy``: the upstream base URL
    (``fake.http_url``, or ``fake.cassette_url(name)`` to pick a cassette by
    path), ``api_key_env``, ``upstream_headers`` as ``"Name: value"`` strings
    and ``connect_timeout``, ``ping_interval``, ``ping_timeout`` and
    ``idle_timeout``, ``close_timeout`` in seconds (``None``: off). Returns the running
    :class:`proxy.Gateway` (``gw.url``, ``gw.realtime_url(model)``). Every
    gateway started is stopped at teardown, sessions included.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            upstream: str,
            *,
            api_key_env: str | None = None,
            upstream_headers: Sequence[str] = (),
            connect_timeout: float = 10.0,
            ping_interval: float | None = 20.0,
            ping_timeout: float | None = 20.0,
            idle_timeout: float | None = None,
            close_timeout: float = 10.0,
        ) -> Gateway:
            config = ProxyConfig(
                upstream=upstream,
                api_key_env=api_key_env,
                upstream_headers=tuple(parse_upstream_header(h) for h in upstream_headers),
                connect_timeout=connect_timeout,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
                idle_timeout=idle_timeout,
                close_timeout=close_timeout,
            )
            return await stack.enter_async_context(Gateway(config))

        yield start
