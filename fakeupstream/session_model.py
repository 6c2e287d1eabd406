"""The GA session model: what the live API knows about one session, and its answers (sans-I/O).

It observes every frame both ways (what the recording plays, and what the client
sends), so its state mirrors what the client has seen: the session config (from
the recorded ``session.created``, else the GA default), the conversation items in
order, the input audio buffer's duration and the response in flight. From that
state it answers the client events the live API answers without a model run,
with the live API's events and wording (the GA protocol reference, sections 4-7):

- ``session.update`` → ``session.updated`` with the merged config; an invalid
  update → one ``error`` (``unknown_parameter``, ``missing_required_parameter``,
  ``invalid_value``, ``integer_below_min_value``) and nothing applied;
- ``conversation.item.create`` → ``conversation.item.added`` then ``.done``;
  ``.retrieve`` / ``.delete`` / ``.truncate`` → ``.retrieved`` / ``.deleted`` /
  ``.truncated``;
- ``input_audio_buffer.append`` → nothing (the live API does not acknowledge
  appends); ``.commit`` → ``.committed`` and the user audio item, or
  ``input_audio_buffer_commit_empty`` under 100 ms; ``.clear`` → ``.cleared``;
- ``response.cancel`` with nothing in flight → ``response_cancel_not_active``.

Everything else (a ``response.create``, a cancel of a response the recording is
playing) it cannot answer: :meth:`SessionModel.answer` returns ``None``. Errors
echo only the ``event_id`` the client actually sent (``null`` otherwise).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from .cassette import JSONObject
from .ga import EventIds, error_event
from .ids import base62

__all__ = ["GA_DEFAULT_SESSION", "MIN_COMMIT_MS", "OBSERVED_SERVER_EVENTS", "SessionModel"]

MIN_COMMIT_MS = 100.0
"""The shortest audio buffer the GA API commits."""

GA_DEFAULT_SESSION: JSONObject = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_FakeUpstreamDefault0",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "instructions": "",
    "tools": [],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "truncation": "auto",
    "prompt": None,
    "expires_at": 0,
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": None,
            "noise_reduction": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
                "idle_timeout_ms": None,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
    },
    "include": None,
}
"""The session a GA connection starts with when no ``session.created`` was seen
(the live defaults of the reference, section 4.1)."""

# What a realtime session.update may carry (RealtimeSessionCreateRequest, openai 3.x).
_SESSION_KEYS = frozenset(
    {
        "type",
        "model",
        "output_modalities",
        "instructions",
        "audio",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "tracing",
        "prompt",
        "truncation",
        "include",
        "reasoning",
        "parallel_tool_calls",
    }
)
_SESSION_TYPES = ("realtime", "transcription")
_MODALITIES = ("text", "audio")
_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
_FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")
_TOOL_CHOICES = ("auto", "none", "required")
_ITEM_TYPES = (
    "message",
    "function_call",
    "function_call_output",
    "mcp_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
)
# Bytes of audio per millisecond: 16-bit PCM at 24 kHz, or 8-bit G.711 at 8 kHz.
_BYTES_PER_MS = {"audio/pcm": 48.0, "audio/pcmu": 8.0, "audio/pcma": 8.0}
# The server events that change what the model knows; any other is ignored at once.
OBSERVED_SERVER_EVENTS = frozenset(
    {
        "session.created",
        "session.updated",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.created",
        "conversation.item.deleted",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "response.created",
        "response.done",
    }
)


class _Invalid(Exception):
    """An invalid client event: the ``error`` event's code, message and param."""

    def __init__(self, code: str, message: str, param: str | None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def _quoted(values: tuple[str, ...]) -> str:
    quoted = [f"'{value}'" for value in values]
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def _invalid_value(value: Any, supported: tuple[str, ...], param: str) -> _Invalid:
    return _Invalid(
        "invalid_value",
        f"Invalid value: '{value}'. Supported values are: {_quoted(supported)}.",
        param,
    )


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> JSONObject:
    """A new dict: ``update`` merged into ``base``, objects recursively, anything else replaced."""
    merged = dict(base)
    for key, value in update.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def _base64_length(text: str) -> int:
    """How many bytes a base64 text decodes to, without decoding it."""
    text = text.strip()
    return max(0, len(text) * 3 // 4 - text[-2:].count("="))


class SessionModel:
    """The state of one GA session, and the answers the live API gives from it.

    Args:
        ids: the connection's server event ids (shared with the replay engine).
        connection: the connection number, to make item ids unique per connection.
    """

    def __init__(self, ids: EventIds, connection: int = 0) -> None:
        self._ids = ids
        self._item_ids = itertools.count(1)
        self._item_prefix = "item_FM" + base62(connection, 6)
        self.session: JSONObject = GA_DEFAULT_SESSION
        self.items: dict[str, JSONObject] = {}  # by id, in conversation order
        self.audio_bytes = 0
        self.response: str | None = None  # the id of the response in flight

    # -- observing ------------------------------------------------------------------------

    def observe_server(self, event: Mapping[str, Any]) -> None:
        """Learn from a server event the client received (recorded or made up)."""
        kind = event.get("type")
        if kind not in OBSERVED_SERVER_EVENTS:
            return
        if kind in ("session.created", "session.updated"):
            session = event.get("session")
            if isinstance(session, dict):
                self.session = session
        elif kind in (
            "conversation.item.added",
            "conversation.item.done",
            "conversation.item.created",
        ):
            item = event.get("item")
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                self.items[item["id"]] = item
        elif kind == "conversation.item.deleted":
            self.items.pop(str(event.get("item_id")), None)
        elif kind in ("input_audio_buffer.committed", "input_audio_buffer.cleared"):
            self.audio_bytes = 0
        elif kind == "response.created":
            response = event.get("response")
            self.response = response.get("id") if isinstance(response, dict) else None
            self.response = self.response or "resp_in_flight"
        else:  # response.done
            self.response = None

    def observe_client(self, event: Mapping[str, Any]) -> None:
        """Learn from a client event the recording answers (only audio appends matter)."""
        if event.get("type") == "input_audio_buffer.append":
            audio = event.get("audio")
            if isinstance(audio, str):
                self.audio_bytes += _base64_length(audio)

    @property
    def audio_ms(self) -> float:
        """How much audio the input buffer holds, in milliseconds."""
        audio = self.session.get("audio")
        fmt: Any = {}
        if isinstance(audio, dict) and isinstance(audio.get("input"), dict):
            fmt = audio["input"].get("format") or {}
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        rate = _BYTES_PER_MS.get(kind if isinstance(kind, str) else "audio/pcm", 48.0)
        return self.audio_bytes / rate

    def last_item_id(self) -> str | None:
        """The id of the last item in the conversation, or ``None`` when it is empty."""
        return next(reversed(self.items), None)

    # -- answering ------------------------------------------------------------------------

    def answer(self, event: Mapping[str, Any]) -> list[JSONObject] | None:
        """The live API's answer to a client event, or ``None`` if the model cannot give it.

        The state is updated as the live API would (an invalid event changes nothing);
        the returned events are observed too, so they need not be fed back.
        """
        handler = _HANDLERS.get(str(event.get("type")))
        if handler is None:
            return None
        try:
            events = handler(self, event)
        except _Invalid as invalid:
            return [
                error_event(
                    self._ids.next(),
                    code=invalid.code,
                    message=invalid.message,
                    param=invalid.param,
                    client_event_id=_sent_id(event),
                )
            ]
        if events is None:
            return None
        for made in events:
            self.observe_server(made)
        return events

    def emit(self, events: list[JSONObject]) -> list[JSONObject]:
        """Give made-up server events their ``event_id`` and learn from them."""
        out = [{"type": event["type"], "event_id": self._ids.next(), **event} for event in events]
        for event in out:
            self.observe_server(event)
        return out

    def new_id(self, prefix: str) -> str:
        """A fresh ``prefix_`` id of the live shape (21 letters and digits)."""
        return f"{prefix}_FM" + self._item_prefix[-6:] + base62(next(self._item_ids), 13)

    def last_user_text(self) -> str:
        """The text of the last user message (its ``input_text`` parts, or a transcript)."""
        for item in reversed(self.items.values()):
            if item.get("type") == "message" and item.get("role") == "user":
                parts = item.get("content") or []
                texts = [
                    str(part.get("text") or part.get("transcript") or "")
                    for part in parts
                    if isinstance(part, dict)
                ]
                return " ".join(text for text in texts if text)
        return ""

    def last_item_type(self) -> str | None:
        """``user``, ``assistant`` (a message's role) or the last item's type, if any."""
        last = self.last_item_id()
        if last is None:
            return None
        item = self.items[last]
        if item.get("type") == "message":
            return str(item.get("role"))
        return str(item.get("type"))

    def function_tools(self) -> list[str]:
        """The names of the function tools the session declares, in order."""
        tools = self.session.get("tools") or []
        return [
            str(tool["name"])
            for tool in tools
            if isinstance(tool, dict) and tool.get("type") == "function" and "name" in tool
        ]

    def output_modalities(self, event: Mapping[str, Any]) -> list[str]:
        """The modalities of a ``response.create``: its own, else the session's."""
        response = event.get("response")
        if isinstance(response, dict) and isinstance(response.get("output_modalities"), list):
            return list(response["output_modalities"])
        modalities = self.session.get("output_modalities")
        return list(modalities) if isinstance(modalities, list) else ["audio"]

    def voice(self) -> Any:
        """The session's output voice."""
        audio = self.session.get("audio")
        output = audio.get("output") if isinstance(audio, dict) else None
        return output.get("voice", "alloy") if isinstance(output, dict) else "alloy"

    def _event(self, kind: str, **fields: Any) -> JSONObject:
        return {"type": kind, "event_id": self._ids.next(), **fields}

    def _new_item_id(self) -> str:
        return self._item_prefix + base62(next(self._item_ids), 13)

    def _session_update(self, event: Mapping[str, Any]) -> list[JSONObject]:
        update = event.get("session")
        if not isinstance(update, dict):
            raise _Invalid(
                "missing_required_parameter", "Missing required parameter: 'session'.", "session"
            )
        if "type" not in update:
            raise _Invalid(
                "missing_required_parameter",
                "Missing required parameter: 'session.type'.",
                "session.type",
            )
        if update["type"] not in _SESSION_TYPES:
            raise _invalid_value(update["type"], _SESSION_TYPES, "session.type")
        if update["type"] == "realtime":
            _check_realtime(update)
        self.session = _merge(self.session, update)
        return [self._event("session.updated", session=self.session)]

    def _item_create(self, event: Mapping[str, Any]) -> list[JSONObject]:
        item = event.get("item")
        if not isinstance(item, dict):
            raise _Invalid(
                "missing_required_parameter", "Missing required parameter: 'item'.", "item"
            )
        if item.get("type") not in _ITEM_TYPES:
            raise _invalid_value(item.get("type"), _ITEM_TYPES, "item.type")
        previous = event.get("previous_item_id", self.last_item_id())
        if previous == "root":
            previous = None
        elif previous is not None and previous not in self.items:
            raise _unknown_item("previous_item_id", previous)
        added: JSONObject = {"id": item.get("id") or self._new_item_id(), **item}
        added.setdefault("status", "completed")
        added.pop("object", None)
        return [
            self._event("conversation.item.added", previous_item_id=previous, item=added),
            self._event("conversation.item.done", previous_item_id=previous, item=added),
        ]

    def _known_item(self, event: Mapping[str, Any]) -> str:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or item_id not in self.items:
            raise _unknown_item("item_id", item_id)
        return item_id

    def _item_retrieve(self, event: Mapping[str, Any]) -> list[JSONObject]:
        item = self.items[self._known_item(event)]
        return [self._event("conversation.item.retrieved", item=item)]

    def _item_delete(self, event: Mapping[str, Any]) -> list[JSONObject]:
        item_id = self._known_item(event)
        return [self._event("conversation.item.deleted", item_id=item_id)]

    def _item_truncate(self, event: Mapping[str, Any]) -> list[JSONObject]:
        item_id = self._known_item(event)
        content_index, audio_end_ms = event.get("content_index"), event.get("audio_end_ms")
        for name, value in (("content_index", content_index), ("audio_end_ms", audio_end_ms)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _Invalid(
                    "invalid_value", f"Invalid value for '{name}': expected an integer >= 0.", name
                )
        return [
            self._event(
                "conversation.item.truncated",
                item_id=item_id,
                content_index=content_index,
                audio_end_ms=audio_end_ms,
            )
        ]

    def _append(self, event: Mapping[str, Any]) -> list[JSONObject]:
        self.observe_client(event)
        return []  # the live API does not acknowledge appends

    def _commit(self, event: Mapping[str, Any]) -> list[JSONObject]:
        duration = self.audio_ms
        if duration < MIN_COMMIT_MS:
            raise _Invalid(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {duration:.2f}ms of audio.",
                None,
            )
        previous, item_id = self.last_item_id(), self._new_item_id()
        item: JSONObject = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        return [
            self._event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id),
            self._event("conversation.item.added", previous_item_id=previous, item=item),
            self._event("conversation.item.done", previous_item_id=previous, item=item),
        ]

    def _clear(self, event: Mapping[str, Any]) -> list[JSONObject]:
        return [self._event("input_audio_buffer.cleared")]

    def _cancel(self, event: Mapping[str, Any]) -> list[JSONObject] | None:
        if self.response is not None:
            return None  # the recording's response is running: only the recording can end it
        raise _Invalid(
            "response_cancel_not_active", "Cancellation failed: no active response found", None
        )


def _sent_id(event: Mapping[str, Any]) -> str | None:
    """The client's own ``event_id``, echoed in errors; ``None`` (JSON null) if it sent none."""
    sent = event.get("event_id")
    return sent if isinstance(sent, str) else None


def _unknown_item(param: str, item_id: Any) -> _Invalid:
    # The live wording for an unknown item id is not in the reference's captures: this
    # follows the shape of its other invalid_value errors (code, quoted value, param).
    return _Invalid(
        "invalid_value",
        f"Invalid value: '{item_id}'. No item with this id exists in the conversation.",
        param,
    )


def _check_realtime(update: Mapping[str, Any]) -> None:
    """Raise :class:`_Invalid` for the first thing the live API would refuse in ``update``."""
    for key in update:
        if key not in _SESSION_KEYS:
            raise _Invalid(
                "unknown_parameter", f"Unknown parameter: 'session.{key}'.", f"session.{key}"
            )
    modalities = update.get("output_modalities")
    if modalities is not None:
        if not isinstance(modalities, list):
            raise _invalid_value(modalities, _MODALITIES, "session.output_modalities")
        for value in modalities:
            if value not in _MODALITIES:
                raise _invalid_value(value, _MODALITIES, "session.output_modalities")
    choice = update.get("tool_choice")
    if isinstance(choice, str) and choice not in _TOOL_CHOICES:
        raise _invalid_value(choice, _TOOL_CHOICES, "session.tool_choice")
    audio = update.get("audio")
    if not isinstance(audio, dict):
        return
    for side in ("input", "output"):
        part = audio.get(side)
        if not isinstance(part, dict):
            continue
        fmt = part.get("format")
        if isinstance(fmt, dict):
            param = f"session.audio.{side}.format"
            if fmt.get("type") not in _FORMATS:
                raise _invalid_value(fmt.get("type"), _FORMATS, f"{param}.type")
            rate = fmt.get("rate")
            if fmt["type"] == "audio/pcm" and isinstance(rate, int) and rate < 24000:
                raise _Invalid(
                    "integer_below_min_value",
                    f"Invalid '{param}.rate': integer below minimum value. "
                    f"Expected a value >= 24000, but got {rate} instead.",
                    f"{param}.rate",
                )
    voice = audio.get("output", {}).get("voice") if isinstance(audio.get("output"), dict) else None
    if isinstance(voice, str) and voice not in _VOICES:
        raise _invalid_value(voice, _VOICES, "session.audio.output.voice")


_Handler: TypeAlias = Callable[[SessionModel, Mapping[str, Any]], list[JSONObject] | None]
_HANDLERS: dict[str, _Handler] = {
    "session.update": SessionModel._session_update,
    "conversation.item.create": SessionModel._item_create,
    "conversation.item.retrieve": SessionModel._item_retrieve,
    "conversation.item.delete": SessionModel._item_delete,
    "conversation.item.truncate": SessionModel._item_truncate,
    "input_audio_buffer.append": SessionModel._append,
    "input_audio_buffer.commit": SessionModel._commit,
    "input_audio_buffer.clear": SessionModel._clear,
    "response.cancel": SessionModel._cancel,
}
