"""The REST side of the realtime API, answered like the live API (sans-I/O).

Gateways and backends call these before (or instead of) opening a WebSocket:

- ``GET /v1/models`` and ``GET /v1/models/{id}``: ``gpt-realtime`` and every model
  the cassettes name (gateways discover their models this way);
- ``POST /v1/realtime/client_secrets`` (and ``/v1/realtime/translations/client_secrets``):
  mints an ephemeral key (``ek_`` + 32 hex digits) for the session config in the
  body, with the top-level ``expires_at`` the live API gives. A WebSocket that then
  presents the key (``Authorization: Bearer ek_...`` or the
  ``openai-insecure-api-key.ek_...`` subprotocol) is accepted and starts from that
  session config (:func:`with_session_config`); an unknown or expired ``ek_`` key
  gets the live API's ``invalid_api_key`` error and close 3000 (only keys shaped like
  minted ones are checked: a made-up ``ek_test`` is accepted like any other key).

When the selected cassette recorded the request (its ``http:`` list; see
:mod:`.http_replay`), the recorded status and body answer it, with times moved to
now and a fresh key wherever the recording holds ``ek_REDACTED`` (a key that opens a
session like one minted here); otherwise the answer comes from this module's state.

Every path may carry a cassette prefix (``/cassettes/<name>/v1/...``), like the
WebSocket. The clock and the key generator are passed in, so this is tested with
plain values.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit

from .calls import CALL_PREFIX, Calls
from .cassette import Cassette, CloseStep, Direction, FrameStep, HttpExchange, JSONObject, Step
from .ga import AUTH_CLOSE, error_event
from .http_replay import HttpPlayback, recorded_response
from .http_request import HttpRequest
from .ids import base62
from .redaction import EPHEMERAL_PLACEHOLDER, KEY_SUBPROTOCOL
from .responses import HttpResponse, error_response, json_response
from .session_model import GA_DEFAULT_SESSION
from .timeshift import seconds_since, shift_times
from .upgrade import split_cassette_prefix

__all__ = [
    "DEFAULT_MODEL",
    "EPHEMERAL_PREFIX",
    "KeyAccepted",
    "KeyRejected",
    "KeyVerdict",
    "RealtimeRest",
    "cassette_models",
    "ephemeral_key",
    "invalid_key_steps",
    "is_rest_route",
    "lists_models",
    "target_with_model",
    "with_session_config",
]

DEFAULT_MODEL = "gpt-realtime"
EPHEMERAL_PREFIX = "ek_"

# The shape of the keys the live API (and this fake) mints. Only keys of this shape are
# checked: like any other key the fake accepts, a made-up "ek_test" opens a session.
_MINTED_SHAPE = re.compile(r"^ek_[0-9a-f]{32}$")
# The expiry a client secret may ask for (expires_after.seconds), and its default.
_MIN_SECONDS, _MAX_SECONDS, _DEFAULT_SECONDS = 10, 7200, 600
# Models are listed with a fixed creation time: clients only read the ids.
_MODEL_CREATED = 1756252800
_CLIENT_SECRET_PATHS = ("/v1/realtime/client_secrets", "/v1/realtime/translations/client_secrets")
_CALLS = "/v1/realtime/calls"
_LEGACY_SESSIONS = "/v1/realtime/sessions"
# Keys minted by the legacy (beta) sessions endpoint lived one minute.
_LEGACY_SECONDS = 60

_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)


@dataclass(frozen=True, slots=True)
class KeyAccepted:
    """A live ephemeral key: the WebSocket starts from ``session`` (the requested config)."""

    session: JSONObject


@dataclass(frozen=True, slots=True)
class KeyRejected:
    """An ``ek_`` key the fake never minted, or one that expired."""

    key: str


KeyVerdict: TypeAlias = KeyAccepted | KeyRejected


@dataclass(frozen=True, slots=True)
class _Minted:
    expires_at: int
    requested: JSONObject


class RealtimeRest:
    """Answers the REST routes of one server and remembers the keys it minted.

    Args:
        models: the models the cassettes name (called per request, so new cassettes show).
        new_secret: returns 32 fresh hex digits for each ephemeral key.
        new_session_id: returns a fresh ``sess_`` id.
        new_call_id: returns the letters and digits of a fresh ``rtc_`` id (a counter
            by default).
    """

    def __init__(
        self,
        models: Callable[[], Iterable[str]],
        new_secret: Callable[[], str],
        new_session_id: Callable[[], str],
        new_call_id: Callable[[], str] | None = None,
    ) -> None:
        self._models = models
        self._new_secret = new_secret
        self._new_session_id = new_session_id
        self._keys: dict[str, _Minted] = {}
        if new_call_id is None:
            counter = itertools.count(1)
            new_call_id = lambda: base62(next(counter), 24)  # noqa: E731
        self.calls = Calls(new_call_id)
        """The WebRTC calls created through ``POST /v1/realtime/calls``."""
        self.playback = HttpPlayback()
        """How far the cassettes' recorded exchanges have been played."""

    def handle(
        self, request: HttpRequest, now: float, cassette: Cassette | None = None
    ) -> HttpResponse | None:
        """Answer ``request`` if it is a REST route; ``None`` when it is not one.

        Args:
            request: the request, body included.
            now: the current Unix time.
            cassette: the selected cassette: an exchange it recorded for the request
                answers it (after the method and credentials are checked).
        """
        _, path = split_cassette_prefix(request.path)
        path = path.rstrip("/")
        allowed = _allowed_methods(path)
        if not allowed:
            return None
        if request.method not in allowed:
            return error_response(
                405,
                f"{request.method} is not allowed here; use {allowed[0]}",
                "method_not_allowed",
                headers=(("Allow", allowed[0]),),
            )
        if _bearer(request.header("Authorization")) is None:
            return error_response(401, _MISSING_KEY, None)
        if cassette is not None:
            exchange = self.playback.take(cassette, request.method, path)
            if exchange is not None:
                shift = seconds_since(cassette.time_anchor, now)
                return self._replay(exchange, request, now, shift)
        if path == "/v1/models":
            return json_response(
                200, {"object": "list", "data": [_model(m) for m in self.models()]}
            )
        if path.startswith("/v1/models/"):
            wanted = path.removeprefix("/v1/models/")
            if wanted in self.models():
                return json_response(200, _model(wanted))
            message = f"The model '{wanted}' does not exist or you do not have access to it."
            return error_response(404, message, "model_not_found")
        if path == _CALLS:
            return self.calls.create(request)
        if path.startswith(f"{_CALLS}/"):
            call_id, _, action = path.removeprefix(f"{_CALLS}/").partition("/")
            return self.calls.control(call_id, action)
        if path == _LEGACY_SESSIONS:
            return self._legacy_session(request.body, now)
        return self._client_secret(request.body, now, translation="translations" in path)

    def models(self) -> list[str]:
        """``gpt-realtime`` and the cassettes' models, sorted, each once."""
        return sorted({DEFAULT_MODEL, *self._models()})

    def check_key(
        self, headers: Sequence[tuple[str, str]], subprotocols: Sequence[str], now: float
    ) -> KeyVerdict | None:
        """What an upgrade request's ``ek_`` key says, or ``None`` when it carries none.

        Only keys shaped like minted ones (``ek_`` + 32 hex digits) are checked; the fake
        accepts any other key, as it accepts any ``sk-`` key.
        """
        key = ephemeral_key(headers, subprotocols)
        if key is None or not _MINTED_SHAPE.match(key):
            return None
        minted = self._keys.get(key)
        if minted is None or now >= minted.expires_at:
            return KeyRejected(key)
        return KeyAccepted(copy.deepcopy(minted.requested))

    def sideband(self, target: str) -> KeyAccepted | None:
        """For a sideband WebSocket (``?call_id=rtc_...``) of a call made here, its session."""
        if not self.calls.sessions:
            return None  # no call was made here (most servers): nothing to parse
        query = dict(parse_qsl(urlsplit(target).query))
        session = self.calls.sessions.get(query.get("call_id", ""))
        return None if session is None else KeyAccepted(copy.deepcopy(session))

    def _mint(self, requested: JSONObject, now: float, seconds: int) -> tuple[str, int]:
        expires_at = int(now) + seconds
        return self._register(requested, now, expires_at), expires_at

    def _register(self, requested: JSONObject, now: float, expires_at: int) -> str:
        """A fresh key, valid until ``expires_at``, opening a session from ``requested``."""
        value = EPHEMERAL_PREFIX + self._new_secret()
        self._keys = {k: v for k, v in self._keys.items() if v.expires_at > now}
        self._keys[value] = _Minted(expires_at, requested)
        return value

    def _replay(
        self, exchange: HttpExchange, request: HttpRequest, now: float, shift: int
    ) -> HttpResponse:
        """The recorded answer, moved to now, with a fresh key for each placeholder."""
        _, path = split_cassette_prefix(request.path)
        requested = _requested(path.rstrip("/"), request.body)
        body = self._remint(shift_times(exchange.response_body, shift), requested, now)
        return recorded_response(exchange, body)

    def _remint(self, value: Any, requested: JSONObject, now: float) -> Any:
        """``value`` with every ``ek_REDACTED`` replaced by a key minted here.

        The key expires at the ``expires_at`` next to it (already moved to now), as the
        recorded one did: ``{"value": ..., "expires_at": ...}`` (GA) or the legacy
        ``client_secret`` object.
        """
        if isinstance(value, list):
            return [self._remint(item, requested, now) for item in value]
        if not isinstance(value, dict):
            return value
        out = {key: self._remint(item, requested, now) for key, item in value.items()}
        for key, item in out.items():
            if item == EPHEMERAL_PLACEHOLDER:
                expires_at = out.get("expires_at")
                if type(expires_at) is not int or expires_at <= 0:
                    expires_at = int(now) + _DEFAULT_SECONDS
                out[key] = self._register(copy.deepcopy(requested), now, expires_at)
        return out

    def _legacy_session(self, body: bytes, now: float) -> HttpResponse:
        """The beta-era ``POST /v1/realtime/sessions``: a beta session and its client secret."""
        payload = _json_object(body)
        if isinstance(payload, HttpResponse):
            return payload
        model = payload.get("model", DEFAULT_MODEL)
        requested = _legacy_requested(payload)
        value, expires_at = self._mint(requested, now, _LEGACY_SECONDS)
        session = {
            "id": self._new_session_id(),
            "object": "realtime.session",
            "model": model,
            "modalities": ["audio", "text"],
            "instructions": "",
            "voice": "alloy",
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_transcription": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
                "create_response": True,
                "interrupt_response": True,
            },
            "tools": [],
            "tool_choice": "auto",
            "temperature": 0.8,
            "max_response_output_tokens": "inf",
            "tracing": None,
        }
        session = _merged(session, payload)
        session["client_secret"] = {"value": value, "expires_at": expires_at}
        return json_response(200, session)

    def _client_secret(self, body: bytes, now: float, *, translation: bool) -> HttpResponse:
        payload = _json_object(body)
        if isinstance(payload, HttpResponse):
            return payload
        expires_after = payload.get("expires_after")
        seconds: object = _DEFAULT_SECONDS
        if expires_after is not None:
            seconds = expires_after.get("seconds") if isinstance(expires_after, dict) else None
        if (
            not isinstance(seconds, int)
            or isinstance(seconds, bool)
            or not _MIN_SECONDS <= seconds <= _MAX_SECONDS
        ):
            return error_response(
                400,
                f"Invalid 'expires_after.seconds': expected an integer from {_MIN_SECONDS} "
                f"to {_MAX_SECONDS}.",
                "invalid_value",
                param="expires_after.seconds",
            )
        requested = payload.get("session") or {}
        if not isinstance(requested, dict):
            return error_response(
                400,
                "Invalid type for 'session': expected an object.",
                "invalid_type",
                param="session",
            )
        kind = requested.get("type", "translation" if translation else "realtime")
        if kind not in ("realtime", "transcription", "translation"):
            return error_response(
                400,
                f"Invalid value: '{kind}'. Supported values are: 'realtime' and 'transcription'.",
                "invalid_value",
                param="session.type",
            )
        value, expires_at = self._mint(requested, now, seconds)
        session = _session_object(kind, requested, self._new_session_id())
        return json_response(200, {"value": value, "expires_at": expires_at, "session": session})


def lists_models(path: str) -> bool:
    """Tell whether answering ``path`` reads every cassette (the models they name)."""
    path = split_cassette_prefix(path)[1].rstrip("/")
    return path == "/v1/models" or path.startswith("/v1/models/")


def is_rest_route(path: str) -> bool:
    """Tell whether ``path`` (with or without a cassette prefix) is a REST route served here."""
    return bool(_allowed_methods(split_cassette_prefix(path)[1].rstrip("/")))


def _allowed_methods(path: str) -> tuple[str, ...]:
    """The methods a REST route takes; none when ``path`` (prefix removed) is not one."""
    if path == "/v1/models" or path.startswith("/v1/models/"):
        return ("GET",)
    if path in (*_CLIENT_SECRET_PATHS, _CALLS, _LEGACY_SESSIONS) or path.startswith(
        f"{_CALLS}/{CALL_PREFIX}"
    ):
        return ("POST",)
    return ()


def _requested(path: str, body: bytes) -> JSONObject:
    """The session config a request for a key asks for (``{}`` when it asks for none)."""
    payload = _json_object(body)
    if isinstance(payload, HttpResponse):
        return {}
    if path == _LEGACY_SESSIONS:
        return _legacy_requested(payload)
    session = payload.get("session")
    return session if isinstance(session, dict) else {}


def _legacy_requested(payload: dict[str, Any]) -> JSONObject:
    """What a legacy session's key opens, in GA terms: the beta fields with a GA twin."""
    requested: JSONObject = {"type": "realtime", "model": payload.get("model", DEFAULT_MODEL)}
    if "instructions" in payload:
        requested["instructions"] = payload["instructions"]
    if "voice" in payload:
        requested["audio"] = {"output": {"voice": payload["voice"]}}
    return requested


def _json_object(body: bytes) -> dict[str, Any] | HttpResponse:
    """The JSON object in ``body`` (empty: ``{}``), or the live API's 400."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return error_response(400, _BAD_JSON, None)
    if not isinstance(payload, dict):
        return error_response(400, _BAD_JSON, None)
    return payload


def cassette_models(cassette: Cassette) -> set[str]:
    """The models a cassette names: in its expected query and its session events."""
    found: set[str] = set()
    for episode in cassette.episodes:
        found.update(v for k, v in episode.handshake.expect.query if k == "model")
        for step in episode.timeline:
            if not isinstance(step, FrameStep) or not isinstance(step.data, dict):
                continue
            session = step.data.get("session")
            if isinstance(session, dict) and isinstance(session.get("model"), str):
                found.add(session["model"])
    return found


def with_session_config(data: str | bytes, session: JSONObject) -> str | bytes:
    """``data`` with ``session`` merged into it when it is the ``session.created`` event.

    The key's session config is where the live API starts a session minted with
    ``client_secrets``; the recorded ``session.created`` shows it that way.
    """
    if not isinstance(data, str) or '"session.created"' not in data:
        return data
    event = json.loads(data)
    if not isinstance(event, dict) or event.get("type") != "session.created":
        return data
    current = event.get("session")
    event["session"] = _merged(current if isinstance(current, dict) else {}, session)
    return json.dumps(event, separators=(",", ":"))


def invalid_key_steps(key: str, event_id: str) -> tuple[Step, ...]:
    """What the live API does with a key it does not know: an ``error``, then close 3000."""
    masked = f"{key[:7]}***...{key[-4:]}" if len(key) > 11 else "***"
    event = error_event(
        event_id,
        code="invalid_api_key",
        message=f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    )
    return (
        FrameStep(Direction.SERVER, event),
        CloseStep(code=AUTH_CLOSE[0], reason=f"{AUTH_CLOSE[1]}.invalid_api_key"),
    )


def target_with_model(target: str, verdict: KeyVerdict | None) -> str:
    """``target`` with the key's model added when it names none (the key carries one)."""
    if not isinstance(verdict, KeyAccepted):
        return target
    parts = urlsplit(target)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name in ("model", "call_id", "intent") for name, _ in query):
        return target
    model = verdict.session.get("model", DEFAULT_MODEL)
    query.append(("model", model if isinstance(model, str) else DEFAULT_MODEL))
    return f"{parts.path}?{urlencode(query)}"


def _merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _session_object(kind: str, requested: JSONObject, session_id: str) -> JSONObject:
    """The session the live API returns with a client secret: defaults, then the request."""
    if kind != "realtime":
        return {**requested, "type": kind, "id": session_id, "expires_at": 0}
    # The same GA defaults a WebSocket session starts from, under this key's own id.
    defaults: JSONObject = copy.deepcopy(GA_DEFAULT_SESSION)
    defaults.update(id=session_id, model=DEFAULT_MODEL)
    return _merged(defaults, requested)


def _model(model: str) -> JSONObject:
    return {"id": model, "object": "model", "created": _MODEL_CREATED, "owned_by": "system"}


def _bearer(authorization: str | None) -> str | None:
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def ephemeral_key(headers: Sequence[tuple[str, str]], subprotocols: Sequence[str]) -> str | None:
    """The ``ek_`` key an upgrade request presents (bearer or subprotocol), if any."""
    for name, value in headers:
        if EPHEMERAL_PREFIX in value and name.lower() == "authorization":  # most have none
            key = _bearer(value)
            if key is not None and key.startswith(EPHEMERAL_PREFIX):
                return key
    for protocol in subprotocols:
        key = protocol.removeprefix(KEY_SUBPROTOCOL)
        if protocol.startswith(KEY_SUBPROTOCOL) and key.startswith(EPHEMERAL_PREFIX):
            return key
    return None
