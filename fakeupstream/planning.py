"""Plan a connection from its upgrade request: refuse it, replay it, or record it (sans-I/O).

Everything the server decides before the WebSocket handshake completes happens
here, in this order:

1. **route**: the path must be a realtime endpoint (else 404, no report);
2. **select**: the cassette named in the path, else the one selected for the next
   connections, else the server's default (none at all: 404 ``no_cassette``); the
   connection gets its :class:`~fakeupstream.report.ConnectionReport` from here on;
   a browser page's ``Origin`` that is not allowed is refused here (403, see
   :mod:`~fakeupstream.access`);
3. **record or replay**: the :class:`~fakeupstream.recordmode.RecordPolicy` says
   whether this cassette is recorded in this run (a :class:`RecordPlan`, for a
   client that presents the client token when one is set);
4. **load**: an unknown cassette is a 404 listing those that exist, a malformed one
   a 500 saying what is wrong;
5. **episode**: the n-th connection to a cassette replays its n-th episode (the last
   one repeats);
6. **handshake**: :func:`~fakeupstream.handshake.decide` refuses with an HTTP status,
   answers with frames and a close, or replays the timeline (a :class:`ReplayPlan`).

The server asks :meth:`ConnectionPlanner.admit` first, which makes only the checks
the HTTP answer depends on and leaves the rest of an ordinary connection's plan
(the report's view of the request, the GA checks, the event ids) to
:meth:`ConnectionPlanner.prepare`, after the ``101``.

A REST request (a client secret, a call) goes through the same selection and the
same record-or-replay decision (:meth:`ConnectionPlanner.plan_rest`), so the key a
backend mints and the socket that presents it land in one cassette.

The server executes the plan; it decides nothing itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias
from urllib.parse import urlsplit

from .access import AccessPolicy
from .cassette import Cassette, JSONObject, Step, valid_name
from .exceptions import CassetteError, CassetteNotFound
from .faults import Fault
from .ga import EventIds
from .handshake import Answer, Refuse, decide
from .redaction import redact_target
from .report import ConnectionReport, Mismatch
from .responses import HttpResponse, error_response, json_response
from .rest import KeyAccepted, KeyRejected, KeyVerdict, invalid_key_steps
from .upgrade import REALTIME_PATH, UpgradeRequest, route, split_cassette_prefix
from .wire import WireFrames

__all__ = [
    "Admission",
    "CassetteSource",
    "ConnectionPlanner",
    "NeedsLoading",
    "Plan",
    "RecordPlan",
    "Refused",
    "ReplayPlan",
    "RestPlan",
]


class CassetteSource(Protocol):
    """Where cassettes come from (the storage layer's library)."""

    def load(self, name: str) -> Cassette: ...

    def names(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Refused:
    """Answer the upgrade request with this HTTP response; ``report`` is ``None`` for
    requests that are not realtime connections at all."""

    response: HttpResponse
    report: ConnectionReport | None


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """Accept, then play ``steps`` (the timeline, or a handshake rule's answer),
    with ``faults`` injected on top.

    ``session`` is the session config of the ephemeral key the client presented:
    ``session.created`` shows it (see :func:`fakeupstream.rest.with_session_config`).

    ``wire`` holds the encoded frames of a cassette timeline, shared by every
    connection that replays it (``None`` for a handshake answer, often made up
    for one connection: the session encodes its own).
    """

    cassette: Cassette
    steps: Sequence[Step]
    report: ConnectionReport
    ids: EventIds
    faults: tuple[Fault, ...] = ()
    session: JSONObject | None = None
    wire: WireFrames | None = None


@dataclass(frozen=True, slots=True)
class RecordPlan:
    """Relay the connection to the real upstream and save it into cassette ``name``."""

    name: str
    request: UpgradeRequest
    report: ConnectionReport


Plan: TypeAlias = Refused | ReplayPlan | RecordPlan


@dataclass(frozen=True, slots=True)
class Admission:
    """A connection accepted by :meth:`ConnectionPlanner.admit`, to be prepared later.

    Nothing in it changes the answer to the upgrade request (every check that could
    refuse it has passed), so :meth:`ConnectionPlanner.prepare` can make the rest of
    its :class:`ReplayPlan` after the ``101``: the client is reading that answer
    meanwhile, and a connection's setup waits on less.
    """

    id: int
    target: str
    headers: Sequence[tuple[str, str]]
    subprotocols: Sequence[str]
    cassette: Cassette
    episode: int
    """The connection's number for this cassette (its episode, the last one repeating)."""


@dataclass(frozen=True, slots=True)
class NeedsLoading:
    """:meth:`ConnectionPlanner.admit` found cassette ``name`` not in memory: load it
    (off the event loop), then admit again."""

    name: str


@dataclass(frozen=True, slots=True)
class RestPlan:
    """How a REST request is answered.

    Attributes:
        record: forward it upstream and save it into this cassette (recording).
        cassette: otherwise, the selected cassette, whose recorded exchange for the
            request answers it; the fake's own state answers what it did not record.
    """

    record: str | None = None
    cassette: Cassette | None = None


_MAX_TIMELINES = 256
"""Encoded timelines a planner keeps (a timeline is kept alive by its entry)."""


class ConnectionPlanner:
    """Plans each connection of one server (see the module docstring for the order).

    Args:
        source: the cassettes.
        records: tells whether a cassette is recorded in this run; ``None``: never.
        access: who may connect; by default loopback origins and clients without one.
        ids: the connection ids to give out (by default 1, 2, 3, ...).
    """

    def __init__(
        self,
        source: CassetteSource,
        records: Callable[[str], bool] | None = None,
        access: AccessPolicy | None = None,
        *,
        ids: Iterator[int] | None = None,
    ) -> None:
        self._source = source
        self._records = records
        self.access = access if access is not None else AccessPolicy()
        self._ids = ids if ids is not None else itertools.count(1)
        self._connections: dict[str, int] = {}
        # Encoded frames per timeline, keyed by the timeline's identity: a cassette
        # reloaded after an edit brings new timelines (and the oldest entries go).
        self._wire: dict[int, WireFrames] = {}

    def reset(self) -> None:
        """Start every cassette at its first episode again."""
        self._connections.clear()

    def records(self, name: str) -> bool:
        """Tell whether connections to cassette ``name`` are recorded in this run."""
        return self._records is not None and valid_name(name) and self._records(name)

    def admit(
        self,
        target: str,
        headers: Sequence[tuple[str, str]],
        subprotocols: Sequence[str],
        *,
        selected: str | None,
        key: KeyVerdict | None = None,
        cached: Callable[[str], Cassette | None] | None = None,
    ) -> Plan | Admission | NeedsLoading:
        """The part of :meth:`plan` that the answer to the upgrade request depends on.

        A connection with nothing unusual about it (a realtime path, an allowed origin,
        no key, a cassette replayed, loaded and valid, whose episode has neither
        handshake rules nor faults) gets an :class:`Admission`: it takes its id and
        its episode now, and :meth:`prepare` makes the same plan :meth:`plan` would
        have made. Any other connection is planned whole, at once.

        Args:
            cached: where to find cassettes already in memory (it may raise the error
                of a failed load, remembered); a cassette not there is a
                :class:`NeedsLoading` (nothing is taken: admit again once loaded).
                ``None``: load from the source.
        """
        try:
            where = route(urlsplit(target).path)
        except ValueError:  # a malformed target: plan() says so
            where = None
        name = None if where is None else where.cassette or selected
        if (
            name is None
            or not valid_name(name)
            or key is not None
            or self.records(name)
            or self.access.check_origin(headers) is not None
        ):
            return self.plan(target, headers, subprotocols, selected=selected, key=key)
        try:
            cassette = self._source.load(name) if cached is None else cached(name)
        except (CassetteNotFound, CassetteError):  # plan() gives the refusal
            return self.plan(target, headers, subprotocols, selected=selected, key=key)
        if cassette is None:
            return NeedsLoading(name)
        number = self._connections.get(cassette.name, 0)
        episode = cassette.episode(number)
        if episode.handshake.rules or episode.faults:
            return self.plan(target, headers, subprotocols, selected=selected, key=key)
        self._connections[cassette.name] = number + 1
        return Admission(next(self._ids), target, headers, subprotocols, cassette, number)

    def prepare(self, admission: Admission) -> ReplayPlan:
        """The plan of an admitted connection: what :meth:`plan` would have made for it."""
        request = UpgradeRequest.from_target(
            admission.target, admission.headers, admission.subprotocols
        )
        report = self._report(admission.id, admission.cassette.name, admission.target, request)
        plan = self._handshake(
            admission.cassette,
            request.with_path(REALTIME_PATH),
            report,
            number=admission.episode,
        )
        assert isinstance(plan, ReplayPlan)  # only handshake rules refuse, and it has none
        return plan

    def plan(
        self,
        target: str,
        headers: Sequence[tuple[str, str]],
        subprotocols: Sequence[str],
        *,
        selected: str | None,
        key: KeyVerdict | None = None,
    ) -> Plan:
        """Plan the connection for one upgrade request.

        Args:
            target: the request target (path and query).
            headers: the request headers, in order.
            subprotocols: the subprotocols the client offers.
            selected: the cassette for connections that do not name one, if any.
            key: what the ``ek_`` key it presents says, if it presents one: a rejected
                key is answered like the live API (``invalid_api_key``, close 3000)
                before any handshake rule; an accepted one starts from its session.
        """
        try:
            request = UpgradeRequest.from_target(target, headers, subprotocols)
        except ValueError as exc:  # e.g. an unbalanced "[" in the authority
            message = f"malformed request target: {exc}"
            return Refused(error_response(400, message, "invalid_request_target"), None)
        where = route(request.path)
        if where is None:
            message = (
                f"no realtime endpoint at {request.path!r}; connect to /v1/realtime?model=... "
                "or /cassettes/<name>/v1/realtime?model=..."
            )
            return Refused(error_response(404, message, "not_found"), None)
        name = where.cassette or selected
        report = self._report(next(self._ids), name, target, request)
        request = request.with_path(where.path)
        forbidden = self.access.check_origin_of(request.header("Origin"))
        if forbidden is not None:
            return self._refuse(report, forbidden, "origin not allowed")
        if name is None:
            message = (
                "no cassette selected: name one in the path (/cassettes/<name>/v1/realtime), "
                "with POST /__fakeupstream/cassette?name=<name>, or with --cassette"
            )
            return self._refuse(
                report, error_response(404, message, "no_cassette", available=self._names())
            )
        if self.records(name):
            forbidden = self.access.check_token(target, headers)
            if forbidden is not None:
                return self._refuse(report, forbidden, "no client token")
            return RecordPlan(name, request, report)
        loaded = self._load(name)
        if isinstance(loaded, HttpResponse):
            return self._refuse(report, loaded)
        return self._handshake(loaded, request, report, key)

    def _load(self, name: str) -> Cassette | HttpResponse:
        """Cassette ``name``, or the answer for a connection to it: 404 if there is no
        such cassette, 500 if it is malformed."""
        try:
            return self._source.load(name)
        except CassetteNotFound as exc:
            # HTTP answers never show where files are (exc.public() names no directory).
            return error_response(404, exc.public(), "unknown_cassette", available=exc.available)
        except CassetteError as exc:
            message = f"cassette {name!r} is malformed: {exc.public()}"
            return error_response(500, message, "invalid_cassette")

    @staticmethod
    def _report(
        number: int, name: str | None, target: str, request: UpgradeRequest
    ) -> ConnectionReport:
        return ConnectionReport(
            id=number, cassette=name, path=redact_target(target), request=request.seen()
        )

    def _handshake(
        self,
        cassette: Cassette,
        request: UpgradeRequest,
        report: ConnectionReport,
        key: KeyVerdict | None = None,
        *,
        number: int | None = None,
    ) -> Plan:
        if number is None:  # else admit() took it
            number = self._connections.get(cassette.name, 0)
            self._connections[cassette.name] = number + 1
        report.episode = min(number, len(cassette.episodes) - 1)
        episode = cassette.episode(number)
        ids = EventIds(report.id)
        if isinstance(key, KeyRejected):
            report.answer("GA emulation: unknown or expired ephemeral key")
            return ReplayPlan(cassette, invalid_key_steps(key.key, ids.next()), report, ids)
        session = key.session if isinstance(key, KeyAccepted) else None
        decision = decide(episode.handshake, request, ids)
        if isinstance(decision, Refuse):
            response = json_response(decision.status, decision.body, decision.headers)
            report.refuse(answered_by=decision.why)
            return Refused(response, report)
        if isinstance(decision, Answer):
            report.answer(decision.why)
            return ReplayPlan(cassette, decision.steps, report, ids, episode.faults)
        report.replay()
        if decision.differences:
            report.add_mismatch(
                Mismatch(
                    what="unexpected upgrade request",
                    step=None,
                    line=None,
                    expected=None,
                    actual=report.path,
                    differences=list(decision.differences),
                )
            )
        return ReplayPlan(
            cassette,
            episode.timeline,
            report,
            ids,
            episode.faults,
            session,
            self._wire_for(episode.timeline),
        )

    def _wire_for(self, steps: Sequence[Step]) -> WireFrames:
        """The shared encoded frames of ``steps`` (built on first use)."""
        wire = self._wire.get(id(steps))
        if wire is None or wire.steps is not steps:  # the id of a timeline since dropped
            if len(self._wire) >= _MAX_TIMELINES:
                del self._wire[next(iter(self._wire))]
            wire = self._wire[id(steps)] = WireFrames(steps)
        return wire

    def rest_cassette(self, path: str, *, selected: str | None) -> str | None:
        """The cassette a REST request at ``path`` belongs to: named in the path, else
        the selected one (like a connection's)."""
        name = split_cassette_prefix(path)[0] or selected
        return name if name is not None and valid_name(name) else None

    def plan_rest(
        self, name: str | None, target: str, headers: Sequence[tuple[str, str]]
    ) -> RestPlan | HttpResponse:
        """Plan a REST request to cassette ``name``: record it, or replay from it.

        Recording spends the real key, so it is refused (the ``HttpResponse``) to a
        browser page's foreign ``Origin`` and to a client without the client token, as
        a connection is. A cassette that cannot be loaded leaves the answer to the
        fake's state.
        """
        if name is None:
            return RestPlan()
        if self.records(name):
            forbidden = self.access.check_origin(headers) or self.access.check_token(
                target, headers
            )
            return forbidden if forbidden is not None else RestPlan(record=name)
        try:
            return RestPlan(cassette=self._source.load(name))
        except (CassetteError, CassetteNotFound):
            return RestPlan()

    def refuse_admin(self, target: str, response: HttpResponse, why: str) -> Refused:
        """Record a refused admin request in the reports (a browser page probing, say)."""
        try:
            path = redact_target(target)
        except ValueError:  # not even a URL: keep its path, never its query
            path = target.partition("?")[0]
        report = ConnectionReport(id=next(self._ids), cassette=None, path=path)
        return self._refuse(report, response, why)

    def _refuse(
        self, report: ConnectionReport, response: HttpResponse, why: str | None = None
    ) -> Refused:
        report.refuse(why)
        return Refused(response, report)

    def _names(self) -> list[str]:
        return self._source.names()
