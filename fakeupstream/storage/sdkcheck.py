"""Validate realtime events against the official OpenAI SDK's GA types.

Cassettes are hand-written or recorded months before they are replayed, while the
Realtime API keeps evolving. Checking every frame against the event unions that
``openai`` generates from OpenAI's spec (``openai.types.realtime.RealtimeServerEvent``
and ``RealtimeClientEvent``) catches drift offline: a misspelt event type, a field of
the wrong type or a missing required field shows up in ``fakeupstream check`` and in
the test suite, not as a confusing failure in somebody's client.

Validation is strict about types (``"0"`` is not an ``int``), as the wire JSON would be.
The SDK models accept unknown keys, so additions such as the live server's
``obfuscation`` padding on delta events validate fine.

The SDK is an optional dependency (``pip install "fakeupstream[sdk]"``); it is imported
lazily, and the validators raise :class:`RuntimeError` when it is missing.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pydantic comes with the optional SDK; import it lazily at runtime
    import pydantic
    from pydantic_core import ErrorDetails

__all__ = ["sdk_available", "validate_client_event", "validate_server_event"]

_Kind = Literal["server", "client"]

_INSTALL_HINT = (
    "validating realtime events needs the official OpenAI SDK (openai>=2.27); "
    'install fakeupstream[sdk] (pip install "fakeupstream[sdk]")'
)
_UNION_NAMES: dict[_Kind, str] = {
    "server": "openai.types.realtime.RealtimeServerEvent",
    "client": "openai.types.realtime.RealtimeClientEvent",
}
_MAX_INPUT_REPR = 60


def sdk_available() -> bool:
    """Whether an ``openai`` SDK with the GA realtime types can be imported."""
    try:
        import openai.types.realtime  # noqa: F401
    except ImportError:
        return False
    return True


def validate_server_event(event: Mapping[str, Any]) -> str | None:
    """Return None when `event` validates as openai.types.realtime.RealtimeServerEvent.

    Otherwise return a readable reason: the event type, then the pydantic errors as
    ``loc: msg`` lines. Raises RuntimeError when the SDK is not installed.
    """
    return _validate("server", event)


def validate_client_event(event: Mapping[str, Any]) -> str | None:
    """Return None when `event` validates as openai.types.realtime.RealtimeClientEvent.

    Otherwise return a readable reason: the event type, then the pydantic errors as
    ``loc: msg`` lines. Raises RuntimeError when the SDK is not installed.
    """
    return _validate("client", event)


class _Registry(typing.NamedTuple):
    """The SDK union for one direction, split by the ``type`` discriminator."""

    adapters: Mapping[str, pydantic.TypeAdapter[Any]]
    sdk_version: str


@functools.cache
def _registry(kind: _Kind) -> _Registry:
    try:
        import openai
        import pydantic
        from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
    except ImportError as exc:
        raise RuntimeError(_INSTALL_HINT) from exc
    union: object = RealtimeServerEvent if kind == "server" else RealtimeClientEvent
    adapters: dict[str, pydantic.TypeAdapter[Any]] = {}
    for member in _union_members(union):
        for tag in _type_tags(member):
            adapters[tag] = pydantic.TypeAdapter(member)
    return _Registry(adapters, openai.__version__)


def _union_members(tp: object) -> tuple[type[pydantic.BaseModel], ...]:
    """The model classes of a (possibly ``Annotated``) SDK union."""
    import pydantic

    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    members = typing.get_args(tp) or (tp,)
    return tuple(m for m in members if isinstance(m, type) and issubclass(m, pydantic.BaseModel))


def _type_tags(model: type[pydantic.BaseModel]) -> tuple[str, ...]:
    """The ``type`` literal(s) a union member accepts."""
    field = model.model_fields.get("type")
    if field is None or typing.get_origin(field.annotation) is not Literal:
        return ()
    return tuple(tag for tag in typing.get_args(field.annotation) if isinstance(tag, str))


def _validate(kind: _Kind, event: object) -> str | None:
    registry = _registry(kind)
    union = f"{_UNION_NAMES[kind]} (openai {registry.sdk_version})"
    if not isinstance(event, Mapping):
        return f"{kind} event is a {type(event).__name__}, not a JSON object; expected {union}"
    event_type = event.get("type")
    if not isinstance(event_type, str):
        problem = "has no 'type'" if event_type is None else f"has a 'type' of {event_type!r}"
        return f"{kind} event {problem}; expected one of the event types of {union}"
    adapter = registry.adapters.get(event_type)
    if adapter is None:
        return f"unknown {kind} event type {event_type!r}: {union} has no such event type"
    import pydantic

    try:
        adapter.validate_python(dict(event), strict=True)
    except pydantic.ValidationError as exc:
        lines = [f"{kind} event {event_type!r} does not validate as {union}:"]
        lines.extend(f"  {_format_error(error)}" for error in _prune_branches(exc.errors()))
        return "\n".join(lines)
    return None


def _prune_branches(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Drop the errors of union branches that were ruled out by their own ``type`` tag.

    A nested union such as ``session`` (realtime or transcription session) reports every
    branch; a branch whose ``type`` literal does not match is noise next to the branch
    that does.
    """
    ruled_out = {
        error["loc"][:-1]
        for error in errors
        if len(error["loc"]) >= 2
        and error["loc"][-1] == "type"
        and error["type"] == "literal_error"
        and isinstance(error["loc"][-2], str)
        and error["loc"][-2][:1].isupper()
    }
    kept = [
        error
        for error in errors
        if not any(error["loc"][: len(prefix)] == prefix for prefix in ruled_out)
    ]
    return kept or errors


def _format_error(error: ErrorDetails) -> str:
    loc = ""
    for part in error["loc"]:
        if isinstance(part, int):
            loc += f"[{part}]"
        else:
            loc += f".{part}" if loc else part
    text = f"{loc or '(event)'}: {error['msg']}"
    if error["type"] != "missing":
        shown = repr(error["input"])
        if len(shown) > _MAX_INPUT_REPR:
            shown = shown[: _MAX_INPUT_REPR - 3] + "..."
        text += f" (got {shown})"
    return text
