"""The REST routes on the fake's port: models, client secrets, calls.

A request belongs to the cassette its path names, else to the selected one, as a
connection does. When that cassette is being recorded, the request is forwarded
upstream (:class:`~fakeupstream.serve.record_relay.RecordRelay`). Otherwise it is
answered with the cassette's recorded exchange, or, where there is none, from the
fake's own state (:class:`~fakeupstream.rest.RealtimeRest`). A cassette that must
be read first (and every cassette, for ``/v1/models``) is loaded in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable

from ..cassette import Cassette
from ..exceptions import CassetteError, CassetteNotFound
from ..http_request import HttpRequest
from ..ids import base62
from ..planning import ConnectionPlanner
from ..responses import HttpResponse
from ..rest import RealtimeRest, cassette_models, is_rest_route, lists_models
from ..storage.library import CassetteLibrary
from .record_relay import RecordRelay

__all__ = ["RestSide", "load_off_loop"]

BugHandler = Callable[[Exception, str], HttpResponse]
"""Logs a bug, keeps it, and gives the 500 to answer with."""


async def load_off_loop(library: CassetteLibrary, name: str) -> None:
    """Load cassette ``name`` in a thread, so that the event loop goes on meanwhile
    (for the REST side here, and for the server's connections and admin API).

    Parsing is CPU-bound and a file may be large (or an alias bomb, refused by the
    reader's limits). The caller then finds the cassette cached; an error is the
    caller's to report (the library remembers it), so it is dropped here.
    """
    with contextlib.suppress(CassetteError, CassetteNotFound):
        await asyncio.to_thread(library.load, name)


class RestSide:
    """Answers the REST routes of one server.

    Args:
        library: the cassettes.
        planner: decides whether a request is recorded or replayed.
        relay: forwards what is recorded; ``None`` when nothing is.
        selected: the cassette selected for requests that name none.
        on_bug: what to answer when answering raised (a bug, not bad input).
    """

    def __init__(
        self,
        library: CassetteLibrary,
        planner: ConnectionPlanner,
        relay: RecordRelay | None,
        selected: Callable[[], str | None],
        on_bug: BugHandler,
    ) -> None:
        self._library = library
        self._planner = planner
        self._relay = relay
        self._selected = selected
        self._on_bug = on_bug
        self.state = RealtimeRest(
            self._cassette_models,
            new_secret=lambda: secrets.token_hex(16),
            new_session_id=lambda: "sess_" + base62(secrets.randbits(128), 21),
            new_call_id=lambda: base62(secrets.randbits(144), 24),
        )
        """The fake's own REST state: minted keys, calls, playback counters."""

    def answer(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse] | None:
        """The answer to ``request``, later if a cassette must be read first, or
        ``None`` when its path is not a REST route."""
        if not is_rest_route(request.path):
            return None
        name = self._planner.rest_cassette(request.path, selected=self._selected())
        names = self._library.names() if lists_models(request.path) else []
        if name is not None and not self._planner.records(name):
            names.append(name)
        stale = [each for each in names if not self._library.is_current(each)]
        if stale:
            return self._load_then_answer(request, name, stale)  # parse off the loop
        return self._planned(request, name)

    async def _load_then_answer(
        self, request: HttpRequest, name: str | None, stale: list[str]
    ) -> HttpResponse:
        for each in stale:
            await load_off_loop(self._library, each)
        answer = self._planned(request, name)
        return await answer if isinstance(answer, Awaitable) else answer

    def _planned(
        self, request: HttpRequest, name: str | None
    ) -> HttpResponse | Awaitable[HttpResponse]:
        """Answer a request to cassette ``name``: recorded, else replayed or from state."""
        plan = self._planner.plan_rest(name, request.target, request.headers)
        if isinstance(plan, HttpResponse):
            return plan
        if plan.record is None:
            return self._from_state(request, plan.cassette)
        return self._recorded(request, plan.record)

    async def _recorded(self, request: HttpRequest, name: str) -> HttpResponse:
        assert self._relay is not None
        try:
            return await self._relay.forward_http(name, request)
        except Exception as exc:
            return self._on_bug(exc, f"recording REST request {request.method}")

    def _from_state(self, request: HttpRequest, cassette: Cassette | None) -> HttpResponse:
        try:
            answer = self.state.handle(request, time.time(), cassette)
        except Exception as exc:
            return self._on_bug(exc, f"REST request {request.method}")
        assert answer is not None  # the route was checked: the REST side answers it
        return answer

    def _cassette_models(self) -> set[str]:
        models: set[str] = set()
        for name in self._library.names():
            try:
                models |= cassette_models(self._library.load(name))
            except CassetteError:
                continue  # listed as invalid by the admin API; it names no model here
        return models
