"""Compare a client frame with the one a cassette expects.

Each matcher is a small pure function returning the list of differences
(empty means the frame matches), so a miss can always say *why*. ``event_id``
is client-chosen and ignored everywhere, and so is the base64 ``audio`` of
``input_audio_buffer.append``: audio rarely replays byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from .cassette import JSONObject, MatchMode

__all__ = [
    "MATCHERS",
    "Matcher",
    "differences",
    "frame_differences",
    "match_exact",
    "match_subset",
    "match_type",
]

Matcher: TypeAlias = Callable[[JSONObject, JSONObject], list[str]]

_MISSING = object()


def _comparable(event: JSONObject) -> JSONObject:
    """Drop the fields no matcher looks at."""
    ignored = {"event_id"}
    if event.get("type") == "input_audio_buffer.append":
        ignored.add("audio")
    return {key: value for key, value in event.items() if key not in ignored}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def differences(expected: Any, actual: Any, *, subset: bool, path: str = "") -> list[str]:
    """List where ``actual`` differs from ``expected``, one line per difference.

    Args:
        expected: the recorded value.
        actual: the value received.
        subset: when true, keys present only in ``actual`` are not differences.
        path: dotted location prefix used in the messages.
    """
    where = path or "the event"
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[str] = []
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                found.append(f"{sub}: missing (expected {_show(value)})")
            else:
                found.extend(differences(value, actual[key], subset=subset, path=sub))
        if not subset:
            for key in actual.keys() - expected.keys():
                sub = f"{path}.{key}" if path else key
                found.append(f"{sub}: unexpected (got {_show(actual[key])})")
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [
                f"{where}: expected {len(expected)} items, got {len(actual)}"
                f" ({_show(expected)} vs {_show(actual)})"
            ]
        found = []
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            found.extend(differences(left, right, subset=subset, path=f"{path}[{index}]"))
        return found
    # bool is an int in Python; JSON tells them apart, and so do we.
    if expected == actual and isinstance(expected, bool) == isinstance(actual, bool):
        return []
    return [f"{where}: expected {_show(expected)}, got {_show(actual)}"]


def match_type(expected: JSONObject, actual: JSONObject) -> list[str]:
    """Match on the event ``type`` alone (the default, like vcrpy's method + URI)."""
    if expected.get("type", _MISSING) == actual.get("type", _MISSING):
        return []
    return [f"type: expected {_show(expected.get('type'))}, got {_show(actual.get('type'))}"]


def match_subset(expected: JSONObject, actual: JSONObject) -> list[str]:
    """Match when every key the cassette gives is equal in the frame."""
    return differences(_comparable(expected), _comparable(actual), subset=True)


def match_exact(expected: JSONObject, actual: JSONObject) -> list[str]:
    """Match the whole event (``event_id`` and audio payloads aside)."""
    return differences(_comparable(expected), _comparable(actual), subset=False)


MATCHERS: dict[MatchMode, Matcher] = {
    MatchMode.TYPE: match_type,
    MatchMode.SUBSET: match_subset,
    MatchMode.EXACT: match_exact,
}


def frame_differences(
    mode: MatchMode, expected: JSONObject | str | bytes, actual: JSONObject | str | bytes
) -> list[str]:
    """Compare two frames of any kind; JSON events go through the named matcher."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return MATCHERS[mode](expected, actual)
    if type(expected) is not type(actual):
        kinds = {dict: "a JSON event", str: "a text frame", bytes: "a binary frame"}
        return [f"expected {kinds[type(expected)]}, got {kinds[type(actual)]}"]
    if expected == actual:
        return []
    return [f"the frame: expected {_show(expected)}, got {_show(actual)}"]
