""":class:`~fakeupstream.cassette.Cassette` → YAML text: stable and diff-friendly.

Keys keep their order, delays are rounded to microseconds, one episode is written
flat (``handshake`` and ``timeline`` at the top) and several as ``connections``,
so load → dump → load gives the same cassette. Given a
:class:`~fakeupstream.storage.sidecars.SidecarSink`, large audio payloads are
collected into it and the text holds references to them.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC
from typing import Any

import yaml

from ..cassette import Cassette, CloseStep, Condition, Episode, MatchMode, Step
from ..rules import Rule
from .json_steps import encode_step
from .sidecars import SidecarSink
from .yaml_http import exchanges_data

__all__ = ["dumps_cassette"]

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _step_data(step: Step, sidecars: SidecarSink | None = None) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(step, CloseStep):
        out = {"close": {"code": step.code, "reason": step.reason}}
    else:
        kind = step.direction.value
        if isinstance(step.data, bytes):
            out = {f"{kind}_binary": base64.b64encode(step.data).decode("ascii")}
        elif isinstance(step.data, dict) and sidecars is not None:
            out = {kind: sidecars.event(step.direction, step.data)}
        else:
            out = {kind: step.data}
        if step.match is not None:
            out["match"] = step.match.value
    if step.delay:
        out["delay"] = round(step.delay, 6)
    return out


def _condition_data(when: Condition) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (
        ("header", when.header),
        ("missing_header", when.missing_header),
        ("missing_query", when.missing_query),
    ):
        if value:
            out[key] = list(value) if len(value) > 1 else value[0]
    for key, pairs in (("header_equals", when.header_equals), ("query", when.query)):
        if pairs:
            out[key] = dict(pairs)
    if when.path is not None:
        out["path"] = when.path
    return out


def _cassette_data(cassette: Cassette, sidecars: SidecarSink | None) -> dict[str, Any]:
    data: dict[str, Any] = {"version": cassette.version}
    if cassette.description:
        data["description"] = cassette.description
    rec = cassette.recorded
    recorded = {
        key: value
        for key, value in (
            ("at", rec.at.astimezone(UTC).isoformat().replace("+00:00", "Z") if rec.at else None),
            ("upstream", rec.upstream),
            ("model", rec.model),
            ("fakeupstream", rec.fakeupstream),
        )
        if value is not None
    }
    if recorded:
        data["recorded"] = recorded
    if cassette.authored is not None:
        by = cassette.authored
        data["authored"] = {
            key: value
            for key, value in (
                ("at", by.at.astimezone(UTC).isoformat().replace("+00:00", "Z") if by.at else None),
                ("from", list(by.sources) or None),
                ("by", by.by),
            )
            if value is not None
        }
    if cassette.match is not MatchMode.TYPE:
        data["match"] = cassette.match.value
    if cassette.on_unexpected is not None:
        data["on_unexpected"] = cassette.on_unexpected.value
    if cassette.rules:
        data["rules"] = [_rule_data(rule) for rule in cassette.rules]
    if cassette.http:  # before the sockets: a key is minted before it is used
        data["http"] = exchanges_data(cassette.http)
    episodes = [_episode_data(episode, sidecars) for episode in cassette.episodes]
    if cassette.simulated:  # rules or HTTP exchanges only: no timeline at all
        episodes[0].pop("timeline")
        data.update(episodes[0])
    elif len(episodes) == 1:
        data.update(episodes[0])
    else:
        data["connections"] = episodes
    return data


def _rule_data(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"event": rule.event}
    when = {
        key: value
        for key, value in (
            ("text", rule.text_matches),
            ("tools", rule.tools),
            ("last_item", rule.last_item),
        )
        if value is not None
    }
    if when:
        out["when"] = when
    reply: dict[str, Any]
    if rule.text is not None:
        reply = {"text": rule.text}
    elif rule.audio is not None:
        reply = {"audio": rule.audio}
    elif rule.function_call is not None:
        name, arguments = rule.function_call
        reply = {"function_call": {**({"name": name} if name else {}), "arguments": arguments}}
    elif rule.error is not None:
        reply = {"error": {"code": rule.error[0], "message": rule.error[1]}}
    else:
        assert rule.close is not None
        reply = {"close": {"code": rule.close.code, "reason": rule.close.reason}}
    out["reply"] = reply
    return out


def _episode_data(episode: Episode, sidecars: SidecarSink | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    handshake: dict[str, Any] = {}
    exp = episode.handshake.expect
    expect: dict[str, Any] = {}
    if exp.path is not None:
        expect["path"] = exp.path
    if exp.query:
        expect["query"] = dict(exp.query)
    if exp.headers:
        expect["headers"] = dict(exp.headers)
    if expect:
        handshake["expect"] = expect
    rules = []
    for rule in episode.handshake.rules:
        entry: dict[str, Any] = {}
        when = _condition_data(rule.when)
        if when:
            entry["when"] = when
        if rule.refuse is not None:
            refuse: dict[str, Any] = {"status": rule.refuse.status}
            if rule.refuse.body is not None:
                refuse["body"] = rule.refuse.body
            if rule.refuse.headers:
                refuse["headers"] = dict(rule.refuse.headers)
            entry["refuse"] = refuse
        else:
            entry["respond"] = [_step_data(step) for step in rule.respond]
        rules.append(entry)
    if rules:
        handshake["rules"] = rules
    if episode.handshake.accept_beta:
        handshake["accept_beta"] = True
    if handshake:
        data["handshake"] = handshake
    if episode.faults:
        data["faults"] = [fault.to_dict() for fault in episode.faults]
    data["timeline"] = [_step_data(step, sidecars) for step in episode.timeline]
    return data


def dumps_cassette(cassette: Cassette, *, sidecars: SidecarSink | None = None) -> str:
    """Serialize a cassette as stable, diff-friendly YAML.

    Args:
        cassette: what to serialize.
        sidecars: when given, large audio payloads are collected into it and the
            text holds references to them; write its ``files`` next to the cassette
            (:func:`~fakeupstream.storage.sidecars.write_sidecars`) before the text.
    """
    data = _cassette_data(cassette, sidecars)
    try:
        return _dump_cassette_data(data)
    except UnicodeEncodeError:  # a lone surrogate somewhere: see _without_lone_surrogates
        return _dump_cassette_data(_without_lone_surrogates(_cassette_data(cassette, sidecars)))


def _dump_cassette_data(data: dict[str, Any]) -> str:
    timelines = _take_timelines(data)
    return _put_timelines(_dump(data), timelines)


def _dump(data: Any) -> str:
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=None,
        width=100,
    )
    return text


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate (from a ``"\\ud800"`` escape) made U+FFFD.

    YAML can hold no such character: libyaml refuses to write one and PyYAML to read
    one back. Replacing it keeps the rest of a recording that holds one.
    """
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    return value


# -- timelines: one line of JSON per frame step (see json_steps) --------------------------


def _take_timelines(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Swap each timeline in ``data`` for a marker; return the timelines by marker.

    The rest of the cassette goes through PyYAML as before; the steps are written by
    :func:`_put_timelines` where the markers are.
    """
    token = secrets.token_hex(8)
    holders = data.get("connections", [data])
    taken: dict[str, list[dict[str, Any]]] = {}
    for number, holder in enumerate(holders):
        if holder.get("timeline"):
            marker = f"fakeupstream-timeline-{token}-{number}"
            taken[marker] = holder["timeline"]
            # A list holding a list: PyYAML writes it in block style, `- [marker]`.
            holder["timeline"] = [[marker]]
    return taken


def _put_timelines(text: str, timelines: dict[str, list[dict[str, Any]]]) -> str:
    """Write each timeline's steps in place of the line holding its marker."""
    pieces, last = [], 0
    for marker, steps in timelines.items():
        end = text.index(f"- [{marker}]\n", last)
        start = text.rfind("\n", 0, end) + 1
        pieces.append(text[last:start])
        pieces += (_step_text(step, end - start) for step in steps)
        last = end + len(f"- [{marker}]\n")
    pieces.append(text[last:])
    return "".join(pieces)


def _step_text(step: dict[str, Any], column: int) -> str:
    """A step as one line of JSON (and its `match`, `delay`), else as PyYAML writes it."""
    lines = encode_step(step)
    if lines is not None:
        return "".join(f"{' ' * column}{line}\n" for line in lines)
    if column == 0:
        return _dump([step])
    # Nested in `connections` (at column 2): the text PyYAML writes for it there.
    assert column == 2, column
    return _dump([{"timeline": [step]}]).split("\n", 1)[1]
