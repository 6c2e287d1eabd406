"""A REST request sent to the upstream while recording, and its answer read back.

The request is built by :func:`fakeupstream.http_record.upstream_request` (one
request per connection, ``Connection: close``); the answer is read with the same
body reading as the front door's requests (:func:`~fakeupstream.http_request.parse_response`).
Redirects are never followed: the key would go with them.
"""

from __future__ import annotations

import asyncio
import ssl

from ..http_record import UpstreamRequest
from ..http_request import INCOMPLETE, MAX_BODY, complete_size, parse_response
from ..responses import HttpResponse
from .front_door import MAX_HEAD

__all__ = ["send_upstream"]

_READ = 64 * 1024


async def send_upstream(
    request: UpstreamRequest, *, connect_timeout: float, answer_timeout: float
) -> HttpResponse:
    """Send ``request`` and return the upstream's answer.

    Raises:
        TimeoutError: no connection within ``connect_timeout`` seconds, or no
            complete answer within ``answer_timeout``.
        OSError: the upstream cannot be reached.
        ValueError: the answer is not HTTP, or is too large.
    """
    context = ssl.create_default_context() if request.tls else None
    async with asyncio.timeout(connect_timeout):
        reader, writer = await asyncio.open_connection(request.host, request.port, ssl=context)
    try:
        writer.write(request.data)
        async with asyncio.timeout(answer_timeout):
            await writer.drain()
            received = bytearray()
            while True:
                chunk = await reader.read(_READ)
                received += chunk
                if len(received) > MAX_BODY + MAX_HEAD:
                    raise ValueError(f"the upstream's answer is larger than {MAX_BODY} bytes")
                # Asked to close after it, the upstream ends its answer with the
                # connection; a Content-Length says so sooner. Parsed once, not per read.
                if chunk and not _announced_and_complete(received):
                    continue
                answer = parse_response(bytes(received), eof=not chunk)
                if answer is not INCOMPLETE:
                    assert isinstance(answer, HttpResponse)
                    return answer
    finally:
        writer.close()


def _announced_and_complete(received: bytearray) -> bool:
    end = received.find(b"\r\n\r\n")
    if end < 0 or b"content-length:" not in bytes(received[:end]).lower():
        return False
    size = complete_size(bytes(received[: end + 4]))
    return size is not None and len(received) >= size
