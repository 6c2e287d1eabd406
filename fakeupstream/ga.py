"""Facts about the GA Realtime API that the fake reproduces when no cassette says otherwise.

Every message and code here is the wording the live GA API uses: the handshake
failures (101, one ``error`` event, then a close), and the non-fatal errors for
frames it cannot take. Builders return plain event dicts; nothing here does I/O.
"""

from __future__ import annotations

import itertools
from typing import Any

from .cassette import JSONObject
from .ids import base62

__all__ = [
    "AUTH_CLOSE",
    "BETA_CLOSE",
    "BETA_HEADER",
    "MISSING_MODEL_CLOSE",
    "SUPPORTED_CLIENT_EVENTS",
    "EventIds",
    "beta_shape_error",
    "binary_frame_error",
    "error_event",
    "invalid_json_error",
    "missing_auth_error",
    "missing_model_error",
    "unexpected_event_error",
    "unknown_event_error",
]

# The "Supported values" list the live server gives for an unknown client event type,
# in the order it gives them.
SUPPORTED_CLIENT_EVENTS: tuple[str, ...] = (
    "session.update",
    "session.close",
    "input_audio_buffer.append",
    "session.input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
)

# Handshake-time failures: 101, one error event, then this close.
AUTH_CLOSE = (3000, "invalid_request_error")
MISSING_MODEL_CLOSE = (4000, "invalid_request_error.missing_model")
BETA_CLOSE = (4000, "invalid_request_error.beta_api_shape_disabled")
# The GA API refuses the beta shape whenever this header is present, whatever its value.
BETA_HEADER = "OpenAI-Beta"


class EventIds:
    """Server ``event_id`` values: ``event_`` + 21 alphanumerics, like the live API.

    Deterministic per connection (a counter, not randomness), so a replay's output
    is the same run after run.
    """

    def __init__(self, connection: int) -> None:
        self._prefix = "FU" + base62(connection, 6)
        self._counter = itertools.count(1)

    def next(self) -> str:
        """Return a fresh id."""
        return "event_" + self._prefix + base62(next(self._counter), 13)


def error_event(
    event_id: str,
    *,
    code: str | None,
    message: str,
    param: str | None = None,
    client_event_id: Any = None,
    error_type: str = "invalid_request_error",
) -> JSONObject:
    """Build a GA ``error`` event (``RealtimeErrorEvent``)."""
    return {
        "type": "error",
        "event_id": event_id,
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    }


def missing_auth_error(event_id: str) -> JSONObject:
    """No ``Authorization`` header: the live wording, code ``null``."""
    return error_event(
        event_id, code=None, message="Missing bearer or basic authentication in header"
    )


def missing_model_error(event_id: str) -> JSONObject:
    """No ``model`` (nor ``call_id`` / ``intent``) in the query."""
    return error_event(
        event_id,
        code="missing_model",
        message="You must provide a model parameter, for example "
        "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5",
    )


def beta_shape_error(event_id: str) -> JSONObject:
    """An ``OpenAI-Beta`` header on the upgrade request: the beta shape is gone."""
    return error_event(
        event_id,
        code="beta_api_shape_disabled",
        message="The Realtime Beta API is no longer supported. "
        "Please use /v1/realtime for the GA API.",
    )


def invalid_json_error(event_id: str, detail: str) -> JSONObject:
    """A text frame that does not parse as a JSON object."""
    return error_event(
        event_id,
        code="invalid_json",
        message=f"Invalid event: failed to parse JSON value. {detail}",
    )


def binary_frame_error(event_id: str) -> JSONObject:
    """A binary frame: the API only takes text frames."""
    return error_event(
        event_id,
        code="invalid_event",
        message="Expected a text WebSocket message; binary frames are not supported.",
    )


def _quoted_list(values: tuple[str, ...]) -> str:
    quoted = [f"'{value}'" for value in values]
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def unknown_event_error(event_id: str, event_type: Any, client_event_id: Any) -> JSONObject:
    """A client event ``type`` the GA API does not know (or no ``type`` at all)."""
    if event_type is None:
        return error_event(
            event_id,
            code="invalid_event",
            message="The 'type' field is missing.",
            client_event_id=client_event_id,
        )
    return error_event(
        event_id,
        code="invalid_value",
        message=f"Invalid value: '{event_type}'. Supported values are: "
        f"{_quoted_list(SUPPORTED_CLIENT_EVENTS)}.",
        param="type",
        client_event_id=client_event_id,
    )


def unexpected_event_error(event_id: str, message: str, client_event_id: Any) -> JSONObject:
    """A valid client event the cassette did not expect at this point (fakeupstream's own code)."""
    return error_event(
        event_id,
        code="unexpected_client_event",
        message=message,
        client_event_id=client_event_id,
    )
