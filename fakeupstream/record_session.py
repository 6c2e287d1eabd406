"""The sans-I/O recorder: relayed frames in, one :class:`~fakeupstream.cassette.Episode` out.

Like :mod:`.replay`, it never touches a socket or reads a clock: the relay in
:mod:`.recorder` feeds it the upgrade request, every frame with its direction
and the time it passed, and how the connection ended, then asks for the
episode. Everything it keeps has been through the user's ``before_record``
hooks and then the :class:`~fakeupstream.redaction.Redactor`, in that order,
so a hook can never put a credential back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeAlias

from .cassette import (
    CloseStep,
    Condition,
    Direction,
    Episode,
    Expectation,
    FrameStep,
    Handshake,
    HandshakeRule,
    HttpExchange,
    JSONObject,
    Refusal,
    Step,
    is_sendable_close_code,
)
from .redaction import KEY_SUBPROTOCOL, Redactor, is_secret_header, is_secret_param
from .timeshift import shift_times
from .upgrade import UpgradeRequest

__all__ = [
    "BeforeRecord",
    "FrameData",
    "RecordingSession",
    "client_secrets",
    "forwardable_close",
    "rebase_exchange",
    "rebase_times",
]

FrameData: TypeAlias = JSONObject | str | bytes
"""A frame as hooks see it: a JSON event, a raw (non-JSON) text frame, or bytes."""

BeforeRecord: TypeAlias = Callable[[Direction, FrameData], FrameData | None]
"""A hook run on every frame before it is redacted and recorded (vcrpy's
``before_record_*``): return the frame, a rewritten frame, or ``None`` to drop it.
Dropping changes only the cassette, never what is relayed."""

# What a close that cannot be sent on becomes (see forwardable_close).
_INTERNAL_ERROR = 1011


def forwardable_close(code: int | None, reason: str | None, side: str) -> tuple[int, str]:
    """The close to pass on (and to record) when ``side`` has closed with ``code``.

    The code and reason are kept when the code may be sent. A missing close frame
    (1006), an empty one (1005) and 1015 become 1011 with a reason saying what
    happened, as a gateway does: a client never sees a bare 1005 or 1006.
    """
    if code is None or code == 1006:
        return _INTERNAL_ERROR, f"{side} closed without a close frame"
    if code == 1005:
        return _INTERNAL_ERROR, f"{side} closed without a status code"
    if not is_sendable_close_code(code):
        return _INTERNAL_ERROR, f"{side} closed with code {code}"
    reason = reason or ""
    if len(reason.encode()) > 123:  # pragma: no cover - the peer's library refuses those
        reason = reason.encode()[:123].decode(errors="ignore")
    return code, reason


def client_secrets(request: UpgradeRequest) -> list[str]:
    """The credentials a client sent with its upgrade request, to keep them out of files.

    That is the ``Authorization`` credentials, the value of any header that may
    carry one (``api-key``, ``X-Api-Key``, ... in any letter case), of any
    key-bearing query parameter, and the key in an ``openai-insecure-api-key.*``
    subprotocol.
    """
    found = []
    for name, value in request.headers:
        if name.lower() in ("authorization", "proxy-authorization"):
            _scheme, _, credentials = value.strip().partition(" ")
            found.append(credentials.strip() or value)
        elif is_secret_header(name) and name.lower() not in ("cookie", "set-cookie"):
            found.append(value)
    found.extend(value for name, value in request.query if is_secret_param(name))
    found.extend(
        protocol[len(KEY_SUBPROTOCOL) :]
        for protocol in request.subprotocols
        if protocol.startswith(KEY_SUBPROTOCOL)
    )
    return [value for value in found if value.strip()]


class RecordingSession:
    """Builds the episode of one relayed connection.

    Args:
        request: the client's upgrade request (path after any cassette prefix).
        redactor: rewrites every frame kept; the client's credentials found in
            ``request`` are registered with it.
        before_record: hooks run on every frame, in order, before redaction.
    """

    def __init__(
        self,
        request: UpgradeRequest,
        *,
        redactor: Redactor | None = None,
        before_record: Sequence[BeforeRecord] = (),
    ) -> None:
        self.request = request
        self.redactor = redactor if redactor is not None else Redactor()
        for secret in client_secrets(request):
            self.redactor.add_secret(secret)
        self._hooks = tuple(before_record)
        self._steps: list[Step] = []
        self._last: float | None = None
        self._refusal: Refusal | None = None
        self._closed = False
        self.frames = 0
        """Frames kept so far (after the hooks)."""
        self.error: Exception | None = None
        """An exception a hook raised; the episode must then not be saved."""

    @property
    def model(self) -> str | None:
        """The ``model`` query parameter of the upgrade request."""
        return self.request.param("model")

    @property
    def closed(self) -> bool:
        """Whether the end of the connection was recorded."""
        return self._closed

    # -- input ----------------------------------------------------------------------------

    def accepted(self, now: float) -> None:
        """The upstream accepted the upgrade (HTTP 101) at ``now``: delays count from here."""
        self._last = now

    def refused(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        """The upstream refused the upgrade with an HTTP ``status``.

        The body is kept as JSON when it parses (else as text), redacted. Of the
        headers only ``Content-Type`` is kept, and only when it is not JSON (the
        fake sends every refusal body as ``application/json``).
        """
        text = body.decode("utf-8", errors="replace")
        parsed: Any
        try:
            parsed = json.loads(text, parse_constant=_reject_constant) if text.strip() else None
        except ValueError:
            parsed = text
        content_type = tuple(
            ("Content-Type", value)
            for name, value in headers
            if name.lower() == "content-type"
            # The fake sends every refusal body as JSON with this type already.
            and value.split(";")[0].strip().lower() != "application/json"
        )[:1]
        self._refusal = Refusal(
            status=status, body=self.redactor.value(parsed), headers=content_type
        )
        self._closed = True

    def frame(self, direction: Direction, data: str | bytes, now: float) -> None:
        """A frame passed through the relay at ``now``; ``SERVER`` is the upstream."""
        if self._closed:
            return
        delay = 0.0 if self._last is None else max(0.0, now - self._last)
        self._last = now
        kept = _parse(data)
        for hook in self._hooks:
            try:
                rewritten = hook(direction, kept)
            except Exception as exc:
                # Saving what the hook was meant to filter could leak: record nothing.
                self.error = self.error or exc
                return
            if rewritten is None:
                return
            kept = rewritten
        self._steps.append(
            FrameStep(direction=direction, data=self._redact(kept), delay=round(delay, 6))
        )
        self.frames += 1

    def ended(self, by: Direction, code: int | None, reason: str | None, now: float) -> None:
        """The connection ended: ``by`` closed it with ``code`` (``None``: no close frame).

        Only the upstream's close is a step of the timeline: a client's close is
        the client's to repeat at replay, so the timeline just ends there.
        """
        if self._closed:
            return
        self._closed = True
        if by is Direction.SERVER:
            code, reason = forwardable_close(code, reason, "upstream")
            delay = 0.0 if self._last is None else max(0.0, now - self._last)
            self._steps.append(
                CloseStep(code=code, reason=self.redactor.text(reason), delay=round(delay, 6))
            )

    def _redact(self, data: FrameData) -> FrameData:
        if isinstance(data, bytes):
            return self.redactor.binary(data)
        if isinstance(data, str):
            return self.redactor.text(data)
        redacted: JSONObject = self.redactor.value(data)
        return redacted

    # -- output ---------------------------------------------------------------------------

    def episode(self) -> Episode:
        """The connection as a cassette episode.

        ``handshake.expect`` holds the path and the ``model`` only: headers and other
        parameters may carry credentials and are not needed to replay.
        """
        query = () if self.model is None else (("model", self.model),)
        expect = Expectation(path=self.request.path, query=query)
        if self._refusal is not None:
            rule = HandshakeRule(when=Condition(), refuse=self._refusal)
            return Episode(handshake=Handshake(expect=expect, rules=(rule,)))
        return Episode(handshake=Handshake(expect=expect), timeline=tuple(self._steps))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(data: str | bytes) -> FrameData:
    """A text frame holding a JSON object becomes the object; anything else stays as sent."""
    if isinstance(data, bytes):
        return data
    try:
        # NaN and Infinity are not JSON (the cassette could not store them): keep the text.
        event = json.loads(data, parse_constant=_reject_constant)
    except ValueError:
        return data
    return event if isinstance(event, dict) else data


def rebase_times(episode: Episode, seconds: int) -> Episode:
    """Move every ``expires_at`` / ``created_at`` of the server frames by ``seconds``.

    A cassette has one time anchor, ``recorded.at``. An episode appended to an
    older cassette is rebased onto that anchor (``seconds`` negative), so replay
    shifts every episode of the file to the present by the same amount.
    """
    if not seconds:
        return episode

    def step(item: Step) -> Step:
        if (
            isinstance(item, FrameStep)
            and item.direction is Direction.SERVER
            and isinstance(item.data, dict)
        ):
            return FrameStep(
                item.direction, shift_times(item.data, seconds), item.delay, item.match
            )
        return item

    rules = tuple(
        HandshakeRule(rule.when, tuple(step(s) for s in rule.respond), rule.refuse, rule.line)
        for rule in episode.handshake.rules
    )
    return Episode(
        handshake=Handshake(expect=episode.handshake.expect, rules=rules),
        timeline=tuple(step(s) for s in episode.timeline),
    )


def rebase_exchange(exchange: HttpExchange, seconds: int) -> HttpExchange:
    """Move the ``expires_at`` / ``created_at`` of an HTTP answer by ``seconds``.

    The same rebasing as :func:`rebase_times`, for an exchange appended to an older
    cassette (a client secret's ``expires_at`` is replayed like a frame's).
    """
    body = shift_times(exchange.response_body, seconds)
    return exchange if body is exchange.response_body else replace(exchange, response_body=body)
