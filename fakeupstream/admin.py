"""The small HTTP admin API served next to the WebSocket endpoint (sans-I/O).

``POST /__fakeupstream/cassette?name=N`` picks the cassette for the next
connections, ``GET /__fakeupstream/health`` says the server is up,
``GET /__fakeupstream/report`` returns what happened on each connection,
``GET /__fakeupstream/cassettes`` lists the cassettes and
``POST /__fakeupstream/reset`` forgets the reports.
``POST /__fakeupstream/fault?kind=K&...`` arms a fault for the next connections,
``DELETE /__fakeupstream/fault`` disarms them, ``GET /__fakeupstream/faults`` lists
them (see :func:`fakeupstream.faults.answer_fault_request`).
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

from .exceptions import CassetteError, CassetteNotFound
from .faults import FaultBoard, answer_fault_request
from .report import ConnectionReport
from .responses import HttpResponse, error_response, json_response

__all__ = ["ADMIN_PREFIX", "AdminState", "cassette_to_load", "handle_admin"]

ADMIN_PREFIX = "/__fakeupstream/"


class AdminState(Protocol):
    """What the admin API needs from the server."""

    def current_cassette(self) -> str | None: ...

    def use(self, name: str) -> None: ...

    def reports(self) -> list[ConnectionReport]: ...

    def reset(self) -> None: ...

    def cassettes(self) -> list[tuple[str, str]]: ...

    @property
    def faults(self) -> FaultBoard: ...


_ENDPOINTS = {
    "health": ("GET",),
    "report": ("GET",),
    "cassettes": ("GET",),
    "cassette": ("POST",),
    "reset": ("POST",),
    "fault": ("POST", "DELETE"),
    "faults": ("GET",),
}


def cassette_to_load(method: str, target: str) -> str | None:
    """The cassette that answering this request loads (``POST .../cassette?name=N``).

    Parsing a cassette is CPU-bound and a file may be large, so the server loads it
    off its event loop first; :func:`handle_admin` then finds it cached.
    """
    endpoint, query = _parse(target)
    if method != "POST" or endpoint != "cassette":
        return None
    return query.get("name") or None


def lists_cassettes(method: str, target: str) -> bool:
    """Tell whether answering this request loads every cassette (``GET .../cassettes``)."""
    return method == "GET" and _parse(target)[0] == "cassettes"


def _parse(target: str) -> tuple[str, dict[str, str]]:
    """The endpoint (``cassette``) and the query of an admin request target."""
    parts = urlsplit(target)
    endpoint = parts.path.removeprefix(ADMIN_PREFIX).rstrip("/")
    return endpoint, dict(parse_qsl(parts.query, keep_blank_values=True))


def handle_admin(method: str, target: str, state: AdminState) -> HttpResponse:
    """Answer one admin request.

    Args:
        method: the HTTP method.
        target: the request target, e.g. ``/__fakeupstream/cassette?name=session``.
        state: the server.
    """
    endpoint, query = _parse(target)
    allowed = _ENDPOINTS.get(endpoint)
    if allowed is None:
        return error_response(
            404,
            f"unknown admin endpoint {urlsplit(target).path!r}",
            "unknown_endpoint",
            endpoints=[f"{m} {ADMIN_PREFIX}{e}" for e, ms in _ENDPOINTS.items() for m in ms],
        )
    if method not in allowed:
        return error_response(
            405,
            f"{method} is not allowed here; use " + " or ".join(allowed),
            "method_not_allowed",
            headers=(("Allow", ", ".join(allowed)),),
        )
    if endpoint == "health":
        return json_response(200, {"status": "ok", "cassette": state.current_cassette()})
    if endpoint == "report":
        return json_response(200, {"connections": [r.to_json() for r in state.reports()]})
    if endpoint == "cassettes":
        return json_response(
            200,
            {
                "cassettes": [
                    {"name": name, "description": description}
                    for name, description in state.cassettes()
                ]
            },
        )
    if endpoint == "reset":
        state.reset()
        return json_response(200, {"status": "reset"})
    if endpoint in ("fault", "faults"):
        return answer_fault_request(method, query, state.faults)
    name = query.get("name", "")
    if not name:
        return error_response(
            400,
            "missing query parameter 'name': POST /__fakeupstream/cassette?name=<cassette>",
            "missing_name",
            param="name",
        )
    try:
        state.use(name)
    except CassetteNotFound as exc:
        return error_response(404, exc.public(), "unknown_cassette", available=list(exc.available))
    except CassetteError as exc:
        return error_response(422, exc.public(), "invalid_cassette")
    return json_response(200, {"cassette": name})
