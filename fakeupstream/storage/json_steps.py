"""Timeline steps written as one line of JSON, which PyYAML and ``json`` read alike.

A recorded cassette is mostly frames. Read through YAML, each scalar of each event
costs a node, a trip through PyYAML's composer and one through the node reader, so a
50 MB recording took over a minute and 30 times its size in memory. So the dumper
writes each frame step's value as one line of JSON text, in YAML's flow form::

    - server: {"type": "response.output_text.delta", "delta": " Hi", "output_index": 0}
      delay: 0.25
    - client: {"type": "response.cancel"}
      match: exact

That is valid YAML: a JSON object is a YAML flow mapping, a JSON string a
double-quoted scalar. The reader (:mod:`.yaml_skeleton`) reads such lines with
``json`` instead (docs/performance.md has the figures), and this module holds the
rules that make both readings give the same step. JSON and YAML 1.1 (what PyYAML reads)
disagree on a few things; a line holding any of them is left to YAML:

- floats without a dot, or with an unsigned exponent (``1e5``, ``1.5e5``: strings
  in YAML 1.1), ``NaN`` and ``Infinity`` (strings too), and numbers that overflow;
- ``\\u`` escapes of surrogates (JSON pairs them, libyaml refuses them);
- raw characters PyYAML refuses or reads as a line break or a token separator: C0
  and C1 controls, DEL, tab, U+0085, U+2028, U+2029, U+FEFF, U+FFFE, U+FFFF;
- duplicate keys (``json`` keeps the last, the reader refuses them), keys over 128
  characters or with spaces before their ``:`` (YAML allows 1024 raw characters
  from a key's start to its colon), and nesting over 64 levels (the recursion
  limits differ);
- sidecar references that cannot be resolved (the YAML path names their column).

The dumper writes the YAML form for a step whose line would break a rule (it checks
by reading the line back), so everything it writes in this form is read fast.
The property tests in ``tests/storage/test_json_steps.py`` compare both readings.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping
from sys import intern as _intern
from typing import Any, TypeAlias

from ..cassette import Direction, FrameStep, MatchMode
from .sidecars import SidecarProblem, is_reference, parse_reference

__all__ = [
    "MAX_DEPTH",
    "MAX_KEY",
    "MORE_LINE",
    "STEP_LINE",
    "NotJSONStep",
    "StepDecoder",
    "encode_step",
]

MAX_KEY = 128
"""Longest key read as JSON: raw, at most 6 times as long (``\\uXXXX``), so under
the 1024 characters YAML allows from a key's start to its colon."""
MAX_DEPTH = 64
"""Deepest nesting read as JSON."""

_KINDS = ("server", "client", "server_binary", "client_binary")
STEP_LINE = re.compile(r"( *)- (" + "|".join(_KINDS) + r"): ([^\r]*)\r?")
"""A step's first line: its indentation, its kind, its value (used with ``fullmatch``)."""
MORE_LINE = re.compile(r"(delay|match): (.*?) *\r?")
"""A step's further key, written after its indentation plus two spaces."""

# What a JSON value written by the dumper may start with: an object or a string.
# (PyYAML's own flow style, `{type: x}`, is not JSON; skipping it here costs nothing.)
_JSON_START = re.compile(r' *(?:\{ *["}]|")')
# Raw characters PyYAML's reader or libyaml's refuses, or reads as a break or a
# separator. (What str.isprintable() accepts is a subset of what is allowed.)
_UNSAFE_CHAR = re.compile(
    "[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
# Shapes YAML reads differently: a surrogate escape (after `\u`), space between a key
# and its colon (after `" `).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SPACED_KEY = re.compile(r'" +:')
# A delay YAML reads as the same int or float: no sign, no leading zero, no `_`, no
# exponent, and few enough digits that it never overflows.
_DELAY = re.compile(r"(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,17})?")
_MATCH = frozenset(mode.value for mode in MatchMode)
# Raw characters the dumper escapes so that the line stays one line PyYAML accepts.
_ESCAPE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
# Python writes 1e-06 and 1e+16, which YAML 1.1 reads as strings: add ".0".
_BARE_EXPONENT = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![\d.])(-?\d+)(e[-+]\d+)')

_Resolve: TypeAlias = Callable[[Mapping[str, Any]], Any]
"""What a sidecar reference in an event becomes (raises ``SidecarProblem``)."""


class NotJSONStep(ValueError):
    """A line that must be read by YAML (it would read differently, or is an error)."""


class StepDecoder:
    """Reads a step from its lines of JSON, or raises :class:`NotJSONStep`.

    Args:
        resolve_sidecar: turns a sidecar reference into its base64 text; ``None``:
            a reference is left to YAML (which reports it).
    """

    def __init__(self, resolve_sidecar: _Resolve | None) -> None:
        self._resolve = resolve_sidecar
        self._decode = json.JSONDecoder(
            object_pairs_hook=self._object,
            parse_float=_float,
            parse_constant=_constant,
        ).decode

    def step(self, kind: str, value: str, more: Mapping[str, str], line: int) -> FrameStep:
        """The step ``- KIND: VALUE`` with further keys ``more`` (``delay``, ``match``)."""
        data = self.value(kind, value)
        direction = Direction.CLIENT if kind.startswith("client") else Direction.SERVER
        match = None
        if "match" in more:
            if direction is Direction.SERVER or more["match"] not in _MATCH:
                raise NotJSONStep("`match` is for client steps, with a known matcher")
            match = MatchMode(more["match"])
        delay = 0.0
        if "delay" in more:
            if not _DELAY.fullmatch(more["delay"]):
                raise NotJSONStep("a delay YAML might read differently")
            delay = round(float(more["delay"]), 6)
        return FrameStep(direction=direction, data=data, delay=delay, match=match, line=line)

    def value(self, kind: str, text: str) -> Any:
        """An event (a dict), a raw text frame (a str), or a binary frame (bytes)."""
        if not _JSON_START.match(text) or not _alike(text):
            raise NotJSONStep("not JSON text that YAML reads alike")
        try:
            data = self._decode(text)
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
            raise NotJSONStep("not JSON, or not read alike") from None
        # Counting brackets (those in strings too) spares the walk for almost every line.
        if text.count("{") + text.count("[") > MAX_DEPTH and _depth(data) > MAX_DEPTH:
            raise NotJSONStep("nested too deep")
        if kind.endswith("_binary"):
            if not isinstance(data, str):
                raise NotJSONStep("binary data is a base64 string")
            try:
                return base64.b64decode(data, validate=True)
            except ValueError:  # binascii.Error, or a character outside ASCII
                raise NotJSONStep("not base64") from None
        if not isinstance(data, dict | str):
            raise NotJSONStep("a frame is an event or a string")
        return data

    def _object(self, pairs: list[tuple[str, Any]]) -> Any:
        # Interned keys: each line is decoded on its own, so without this every event
        # would hold its own copy of "type", "event_id", ... (1.5 times the memory).
        obj = {_intern(key): value for key, value in pairs}
        if len(obj) != len(pairs):
            raise NotJSONStep("duplicate key")
        if max(map(len, obj), default=0) > MAX_KEY:
            raise NotJSONStep("a long key")
        if not is_reference(obj):
            return obj
        if self._resolve is None:
            raise NotJSONStep("a sidecar reference, with nothing to resolve it")
        try:
            return self._resolve(obj)
        except SidecarProblem:
            raise NotJSONStep("a sidecar reference YAML reports") from None


def _alike(text: str) -> bool:
    """Tell whether YAML reads JSON ``text`` as ``json`` does, as far as raw text shows.

    Each pattern is searched only when a quick test says it may be there.
    """
    return (
        (text.isprintable() or not _UNSAFE_CHAR.search(text))
        and ("\\u" not in text or not _SURROGATE_ESCAPE.search(text))
        and ('" ' not in text or not _SPACED_KEY.search(text))
    )


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar: 0)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            todo.extend(
                (child, depth) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def _float(text: str) -> float:
    mantissa, _, exponent = text.lower().partition("e")
    if "." not in mantissa or (exponent and exponent[0] not in "+-"):
        raise NotJSONStep(f"{text} is a string in YAML 1.1")
    value = float(text)
    if not math.isfinite(value):
        raise NotJSONStep("not a finite number")
    return value


def _constant(text: str) -> Any:
    raise NotJSONStep(f"{text} is a string in YAML")


def encode_step(data: Mapping[str, Any]) -> list[str] | None:
    """A frame step's lines (without indentation), or ``None`` if it needs YAML.

    Args:
        data: the step as the dumper holds it: ``{KIND: value}``, then optionally
            ``match`` and ``delay``.
    """
    kind, *rest = data
    if kind not in _KINDS or not set(rest) <= {"match", "delay"}:
        return None
    text = _json_text(data[kind])
    if text is None:
        return None
    more = {key: _delay_text(data[key]) if key == "delay" else str(data[key]) for key in rest}
    lines = [f"- {kind}: {text}", *(f"  {key}: {value}" for key, value in more.items())]
    if _read_back(kind, lines) != [data[kind], data.get("match"), data.get("delay", 0.0)]:
        return None
    return lines


def _json_text(value: Any) -> str | None:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return None
    text = _ESCAPE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
    if "e-" in text or "e+" in text:
        text = _BARE_EXPONENT.sub(_dotted, text)
    return text


def _dotted(found: re.Match[str]) -> str:
    if found.group(1) is None:  # a string: as it is
        return found.group()
    return f"{found.group(1)}.0{found.group(2)}"


def _delay_text(delay: Any) -> str:
    text = repr(delay)
    return text if _DELAY.fullmatch(text) else f"{delay:.6f}"


def _read_back(kind: str, lines: list[str]) -> list[Any] | None:
    """What the reader makes of ``lines``; ``None`` if it leaves them to YAML."""
    first = STEP_LINE.fullmatch(lines[0])
    more = [MORE_LINE.fullmatch(line[2:]) for line in lines[1:]]
    if first is None or not all(more):
        return None
    keys = {found.group(1): found.group(2) for found in more if found is not None}
    try:
        step = _CHECKER.step(kind, first.group(3), keys, 1)
    except NotJSONStep:
        return None
    data: Any = step.data
    if isinstance(data, bytes):
        data = base64.b64encode(data).decode("ascii")
    return [data, None if step.match is None else step.match.value, step.delay]


def _keep_reference(reference: Mapping[str, Any]) -> Any:
    parse_reference(reference)  # the same checks as when it is read; raises SidecarProblem
    return dict(reference)


_CHECKER = StepDecoder(_keep_reference)
"""Reads back what the dumper writes, keeping sidecar references as they are."""
