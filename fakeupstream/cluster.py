"""The admin API across worker processes that share one port (sans-I/O).

With ``fakeupstream serve --workers N``, N processes accept connections on the
same port (``SO_REUSEPORT``), so an admin request reaches one of them, chosen
by the kernel. For the API to answer for all of them, the worker that gets a
request which changes or reads per-worker state passes it on to every worker
(itself included) and merges their answers here:

- ``POST /__fakeupstream/cassette`` and ``POST /__fakeupstream/reset`` change
  each worker's state: every worker applies it; the first failure, if any, is the
  answer (every worker validates the same cassette directory, so they agree);
- ``POST`` and ``DELETE /__fakeupstream/fault`` arm and disarm faults in every
  worker (a connection may land on any of them; ``count`` is per worker);
- ``GET /__fakeupstream/report`` reads each worker's connections: the answer
  lists them all, by connection id (ids never repeat across workers:
  :func:`worker_ids`);
- anything else (``health``, ``cassettes``, unknown endpoints) is the same in
  every worker and is answered by the one that got it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from .admin import ADMIN_PREFIX
from .responses import HttpResponse, error_response, json_response

__all__ = ["FANNED_OUT", "fans_out", "merge_answers", "worker_ids"]

FANNED_OUT = frozenset(
    {
        ("POST", "cassette"),
        ("POST", "reset"),
        ("GET", "report"),
        # Faults are armed per worker: a connection may land on any of them.
        ("POST", "fault"),
        ("DELETE", "fault"),
    }
)
"""``(method, endpoint)`` of the admin requests every worker must answer."""


def fans_out(method: str, target: str) -> bool:
    """Tell whether the admin request must reach every worker."""
    endpoint = urlsplit(target).path.removeprefix(ADMIN_PREFIX).rstrip("/")
    return (method, endpoint) in FANNED_OUT


def worker_ids(index: int, count: int) -> Iterator[int]:
    """Connection ids for worker ``index`` of ``count``: 1-based, never shared."""
    if not 0 <= index < count:
        raise ValueError(f"worker index {index} is not in 0..{count - 1}")
    return itertools.count(index + 1, count)


def merge_answers(method: str, target: str, answers: Sequence[HttpResponse]) -> HttpResponse:
    """One answer for a fanned-out admin request from every worker's answer.

    Args:
        method: the request's method.
        target: the request's target.
        answers: one answer per worker, in worker order.
    """
    if not answers:
        return error_response(502, "no worker answered", "no_workers")
    failed = next((answer for answer in answers if answer.status >= 300), None)
    if failed is not None:
        return failed
    endpoint = urlsplit(target).path.removeprefix(ADMIN_PREFIX).rstrip("/")
    if (method, endpoint) != ("GET", "report"):
        return answers[0]
    connections = []
    for answer in answers:
        connections.extend(json.loads(answer.body)["connections"])
    connections.sort(key=lambda connection: connection["id"])
    return json_response(200, {"connections": connections})
