"""YAML text → :class:`~fakeupstream.cassette.Cassette`, with errors that point at a line.

Loading composes the YAML into nodes with the safe loader (libyaml's when it is
available) and builds the model from the nodes itself (with :mod:`.yaml_nodes`).
That way nothing is ever constructed from a tag (``!!python/object`` and friends
are refused, not executed), duplicate and unknown keys are caught, and every error
names the line and column it is about. Steps written as one line of JSON (what the
recorder writes) are read before that, without YAML, to the same result
(:mod:`.yaml_skeleton`).

The reader opens no file: a sidecar reference (large audio kept next to the
cassette) is handed to the ``resolve_sidecar`` function the caller passes in
(:func:`~fakeupstream.storage.cassette_file.load_cassette` passes one that reads
the cassette's directory).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..cassette import (
    FORMAT_VERSION,
    Authored,
    Cassette,
    CloseStep,
    Condition,
    Direction,
    Episode,
    Expectation,
    FrameStep,
    Handshake,
    HandshakeRule,
    JSONObject,
    MatchMode,
    Recorded,
    Refusal,
    Step,
    is_sendable_close_code,
)
from ..exceptions import CassetteError, FaultError
from ..faults import FAULT_PARAMS, Fault, build_fault
from ..rules import Rule, RuleClose
from ..unexpected import OnUnexpected
from .sidecars import SidecarProblem, SidecarReference, is_reference, parse_reference
from .yaml_http import read_exchanges
from .yaml_limits import LoadLimits
from .yaml_nodes import JSON_SCALARS, STR, TAG, NodeReader, describe
from .yaml_skeleton import NeedsYAML, Skeleton, take_out_json_steps

__all__ = ["LoadLimits", "SidecarResolver", "loads_cassette", "resolve_limits"]

SidecarResolver: TypeAlias = Callable[[SidecarReference], str]
"""Turns a sidecar reference into the base64 text it stands for, or raises
:class:`~fakeupstream.storage.sidecars.SidecarProblem`."""

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Reader(NodeReader):
    """Builds model objects from YAML nodes, failing with the node's position."""

    def __init__(
        self,
        path: Path | None,
        resolve_sidecar: SidecarResolver | None,
        limits: LoadLimits | None = None,
        skeleton: Skeleton | None = None,
    ) -> None:
        super().__init__(path, limits)
        self.resolve_sidecar = resolve_sidecar
        self.skeleton = skeleton  # the steps already read from JSON lines, if any

    def json(self, node: Node) -> Any:
        """Any JSON value: mappings with string keys, lists, strings, numbers, bools, null."""
        if not self.enter(node):
            return self._json(node)
        try:
            return self._json(node)
        finally:
            self._budget.leave()

    def _json(self, node: Node) -> Any:
        # Most nodes of an event are strings: the constructor would only hand back
        # node.value after its bookkeeping, so skip it (a third of the load time).
        if node.tag == STR and isinstance(node, ScalarNode):
            return node.value
        if isinstance(node, MappingNode):
            if node.tag != TAG + "map":
                self.fail(node, f"unsupported YAML tag {node.tag!r}; expected plain JSON data")
            obj: JSONObject = {}
            for key_node, value_node in node.value:
                key = self.key(key_node)
                if key in obj:
                    self.fail(key_node, f"duplicate key {key!r}")
                obj[key] = self.json(value_node)
            if is_reference(obj):
                try:
                    reference = parse_reference(obj)
                    if self.resolve_sidecar is None:
                        raise SidecarProblem(
                            f"sidecar {reference.path!r} cannot be resolved: "
                            "the cassette was not loaded from a file"
                        )
                    return self.resolve_sidecar(reference)
                except SidecarProblem as exc:
                    self.fail(node, str(exc))
            return obj
        if isinstance(node, SequenceNode):
            if node.tag != TAG + "seq":
                self.fail(node, f"unsupported YAML tag {node.tag!r}; expected plain JSON data")
            return [self.json(item) for item in node.value]
        if not isinstance(node, ScalarNode) or node.tag not in JSON_SCALARS:
            self.fail(
                node,
                f"expected plain JSON data, got {describe(node)} "
                "(quote dates and other special values)",
            )
        value = self._scalars.construct_object(node)
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(node, "expected a finite number (JSON has no NaN or infinity)")
        return value

    # -- the cassette ---------------------------------------------------------------------

    def cassette(self, root: Node | None, name: str) -> Cassette:
        if root is None:
            raise CassetteError(
                "expected a cassette (a mapping with `version` and `timeline`), got an empty file",
                path=self.path,
                line=1,
            )
        top = self.mapping(
            root,
            "a cassette",
            required=("version",),
            allowed=(
                "version",
                "description",
                "recorded",
                "match",
                "handshake",
                "timeline",
                "connections",
                "faults",
                "on_unexpected",
                "authored",
                "rules",
                "http",
            ),
        )
        version = self.scalar(top["version"], "the format version (an integer)", int)
        if version != FORMAT_VERSION:
            self.fail(
                top["version"],
                f"unsupported cassette format version {version}; "
                f"this fakeupstream reads version {FORMAT_VERSION}",
            )
        if "connections" in top:
            if "faults" in top:
                self.fail(top["faults"], "a cassette with `connections` has `faults` in each one")
            if "timeline" in top or "handshake" in top:
                self.fail(
                    root,
                    "a cassette has either `connections` or a top-level "
                    "`handshake` and `timeline`, not both",
                )
            items = self.sequence(top["connections"], "`connections`")
            if not items:
                self.fail(top["connections"], "`connections` needs at least one connection")
            episodes = tuple(self.episode(item) for item in items)
        elif "timeline" in top:
            episodes = (self.episode(root, top),)
        elif "rules" in top or "http" in top:  # no connection: rules, HTTP exchanges
            episodes = (
                Episode(
                    handshake=self.handshake(top["handshake"])
                    if "handshake" in top
                    else Handshake()
                ),
            )
        else:
            self.fail(root, "a cassette is missing required key 'timeline' (or `connections`)")
        return Cassette(
            name=name,
            version=version,
            description=self.string(top["description"], "a description (a string)")
            if "description" in top
            else "",
            recorded=self.recorded(top["recorded"]) if "recorded" in top else Recorded(),
            match=self.match_mode(top["match"]) if "match" in top else MatchMode.TYPE,
            on_unexpected=self.on_unexpected(top["on_unexpected"])
            if "on_unexpected" in top
            else None,
            authored=self.authored(top["authored"]) if "authored" in top else None,
            rules=tuple(self.reply_rule(item) for item in self.sequence(top["rules"], "`rules`"))
            if "rules" in top
            else (),
            simulated=("rules" in top or "http" in top)
            and "timeline" not in top
            and "connections" not in top,
            episodes=episodes,
            http=read_exchanges(self, top["http"], self.json) if "http" in top else (),
            path=self.path,
        )

    def episode(self, node: Node, entries: dict[str, Node] | None = None) -> Episode:
        """One connection: a `handshake` (optional) and a `timeline`."""
        if entries is None:
            entries = self.mapping(
                node,
                "a connection",
                required=("timeline",),
                allowed=("handshake", "timeline", "faults"),
            )
        return Episode(
            handshake=self.handshake(entries["handshake"])
            if "handshake" in entries
            else Handshake(),
            timeline=tuple(self.steps(entries["timeline"], "the timeline", close_last=False)),
            faults=self.faults(entries["faults"]) if "faults" in entries else (),
        )

    def faults(self, node: Node) -> tuple[Fault, ...]:
        """A list of faults, each ``{kind: K, ...parameters}`` (see :mod:`..faults`)."""
        names = ("kind", *dict.fromkeys(name for ps in FAULT_PARAMS.values() for name in ps))
        result = []
        for item in self.sequence(node, "`faults`"):
            entries = self.mapping(item, "a fault", required=("kind",), allowed=names)
            params = {
                name: self.scalar(value, f"a value for {name!r}", (str, int, float))
                for name, value in entries.items()
                if name != "kind"
            }
            try:
                result.append(build_fault(self.string(entries["kind"], "a fault kind"), params))
            except FaultError as exc:
                self.fail(entries.get(exc.param, item), str(exc))
        return tuple(result)

    def match_mode(self, node: Node) -> MatchMode:
        text = self.string(node, "a matcher name")
        try:
            return MatchMode(text)
        except ValueError:
            self.fail(
                node,
                f"unknown matcher {text!r}; expected one of: "
                + ", ".join(mode.value for mode in MatchMode),
            )

    def on_unexpected(self, node: Node) -> OnUnexpected:
        text = self.string(node, "an unexpected-event policy")
        try:
            return OnUnexpected(text)
        except ValueError:
            self.fail(
                node,
                f"unknown unexpected-event policy {text!r}; expected one of: "
                + ", ".join(policy.value for policy in OnUnexpected),
            )

    def reply_rule(self, node: Node) -> Rule:
        entries = self.mapping(
            node, "a rule", required=("event", "reply"), allowed=("event", "when", "reply")
        )
        fields: dict[str, Any] = {"event": self.string(entries["event"], "a client event type")}
        if "when" in entries:
            when = self.mapping(
                entries["when"], "a rule's `when`", allowed=("text", "tools", "last_item")
            )
            if "text" in when:
                pattern = self.string(when["text"], "a regular expression")
                try:
                    re.compile(pattern)
                except re.error as exc:
                    self.fail(when["text"], f"invalid regular expression: {exc}")
                fields["text_matches"] = pattern
            if "tools" in when:
                fields["tools"] = bool(self.scalar(when["tools"], "true or false", bool))
            if "last_item" in when:
                fields["last_item"] = self.string(when["last_item"], "an item kind")
        kinds = ("text", "audio", "function_call", "error", "close")
        reply = self.mapping(entries["reply"], "a rule's `reply`", allowed=kinds)
        if len(reply) != 1:
            self.fail(
                entries["reply"], "a rule's `reply` needs exactly one of: " + ", ".join(kinds)
            )
        [(kind, value)] = reply.items()
        if kind in ("text", "audio"):
            fields[kind] = self.string(value, "a text")
        elif kind == "function_call":
            call = self.mapping(value, "`function_call`", allowed=("name", "arguments"))
            fields[kind] = (
                self.string(call["name"], "a function name") if "name" in call else None,
                self.string(call["arguments"], "the arguments (a JSON string)")
                if "arguments" in call
                else "{}",
            )
        elif kind == "error":
            error = self.mapping(
                value, "`error`", required=("code", "message"), allowed=("code", "message")
            )
            fields[kind] = (
                self.string(error["code"], "an error code"),
                self.string(error["message"], "an error message"),
            )
        else:
            # The same checks as a timeline's `close` step (sendable code, 123 bytes).
            marks = (value.start_mark, value.end_mark)
            key = ScalarNode(TAG + "str", "close", *marks)
            close = self.step(MappingNode(TAG + "map", [(key, value)], *marks), allow_client=False)
            assert isinstance(close, CloseStep)
            fields[kind] = RuleClose(close.code, close.reason)
        return Rule(**fields, line=node.start_mark.line + 1)

    def authored(self, node: Node) -> Authored:
        entries = self.mapping(node, "`authored`", allowed=("at", "from", "by"))
        return Authored(
            at=self.timestamp(entries["at"]) if "at" in entries else None,
            sources=self.names(entries["from"], "a source (a string)") if "from" in entries else (),
            by=self.string(entries["by"], "an author (a string)") if "by" in entries else None,
        )

    def recorded(self, node: Node) -> Recorded:
        entries = self.mapping(
            node, "`recorded`", allowed=("at", "upstream", "model", "fakeupstream")
        )
        at = None
        if "at" in entries:
            at = self.timestamp(entries["at"])
        return Recorded(
            at=at,
            upstream=self.string(entries["upstream"], "a URL") if "upstream" in entries else None,
            model=self.string(entries["model"], "a model id") if "model" in entries else None,
            fakeupstream=str(self.scalar(entries["fakeupstream"], "a version", (str, int, float)))
            if "fakeupstream" in entries
            else None,
        )

    def timestamp(self, node: Node) -> datetime:
        if isinstance(node, ScalarNode) and node.tag == TAG + "timestamp":
            value = self._scalars.construct_object(node)
            if not isinstance(value, datetime):
                self.fail(node, "expected a date and time, not just a date")
        else:
            text = self.string(node, "an ISO 8601 timestamp")
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                self.fail(node, f"expected an ISO 8601 timestamp, got {text!r}")
        # Naive timestamps are read as UTC: the recorder always writes UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def handshake(self, node: Node) -> Handshake:
        entries = self.mapping(node, "`handshake`", allowed=("expect", "rules", "accept_beta"))
        expect = Expectation()
        if "expect" in entries:
            fields = self.mapping(
                entries["expect"], "`handshake.expect`", allowed=("path", "query", "headers")
            )
            expect = Expectation(
                path=self.string(fields["path"], "a path") if "path" in fields else None,
                query=self.pairs(fields["query"], "`query`") if "query" in fields else (),
                headers=self.pairs(fields["headers"], "`headers`") if "headers" in fields else (),
            )
        rules: tuple[HandshakeRule, ...] = ()
        if "rules" in entries:
            rules = tuple(
                self.rule(item) for item in self.sequence(entries["rules"], "`handshake.rules`")
            )
        accept_beta = (
            bool(self.scalar(entries["accept_beta"], "true or false", bool))
            if "accept_beta" in entries
            else False
        )
        return Handshake(expect=expect, rules=rules, accept_beta=accept_beta)

    def rule(self, node: Node) -> HandshakeRule:
        entries = self.mapping(node, "a handshake rule", allowed=("when", "respond", "refuse"))
        if ("respond" in entries) == ("refuse" in entries):
            self.fail(node, "a handshake rule needs exactly one of `respond` or `refuse`")
        when = self.condition(entries["when"]) if "when" in entries else Condition()
        line = node.start_mark.line + 1
        if "refuse" in entries:
            return HandshakeRule(when=when, refuse=self.refusal(entries["refuse"]), line=line)
        steps = self.steps(entries["respond"], "`respond`", close_last=True)
        return HandshakeRule(when=when, respond=tuple(steps), line=line)

    def condition(self, node: Node) -> Condition:
        if isinstance(node, ScalarNode) and node.tag == TAG + "null":
            return Condition()
        entries = self.mapping(
            node,
            "a `when` condition",
            allowed=("header", "header_equals", "missing_header", "query", "missing_query", "path"),
        )
        return Condition(
            header=self.names(entries["header"], "a header name") if "header" in entries else (),
            header_equals=self.pairs(entries["header_equals"], "`header_equals`")
            if "header_equals" in entries
            else (),
            missing_header=self.names(entries["missing_header"], "a header name")
            if "missing_header" in entries
            else (),
            query=self.pairs(entries["query"], "`query`") if "query" in entries else (),
            missing_query=self.names(entries["missing_query"], "a query parameter name")
            if "missing_query" in entries
            else (),
            path=self.string(entries["path"], "a path") if "path" in entries else None,
        )

    def refusal(self, node: Node) -> Refusal:
        entries = self.mapping(
            node, "`refuse`", required=("status",), allowed=("status", "body", "headers")
        )
        status = self.scalar(entries["status"], "an HTTP status (an integer)", int)
        if not 200 <= status <= 599 or status == 101:
            self.fail(
                entries["status"],
                f"expected an HTTP status from 200 to 599 (other than 101), got {status}",
            )
        return Refusal(
            status=status,
            body=self.json(entries["body"]) if "body" in entries else None,
            headers=self.pairs(entries["headers"], "`headers`") if "headers" in entries else (),
        )

    def steps(self, node: Node, what: str, *, close_last: bool) -> Iterator[Step]:
        nodes = self.sequence(node, what)
        items: list[Node | FrameStep] = (
            list(nodes)
            if self.skeleton is None
            else self.skeleton.expand(nodes, close_last=close_last)
        )
        for index, item in enumerate(items):
            if isinstance(item, FrameStep):  # read from a line of JSON (never last here)
                yield item
                continue
            step = self.step(item, allow_client=not close_last)
            is_last = index == len(items) - 1
            if isinstance(step, CloseStep) and not is_last:
                self.fail(item, f"a `close` step must be the last step of {what}")
            if close_last and is_last and not isinstance(step, CloseStep):
                self.fail(item, f"{what} must end with a `close` step")
            yield step
        if close_last and not items:
            self.fail(node, f"{what} must end with a `close` step")

    def step(self, node: Node, *, allow_client: bool) -> Step:
        kinds = ("server", "client", "server_binary", "client_binary", "close")
        entries = self.mapping(node, "a timeline step", allowed=(*kinds, "delay", "match"))
        present = [kind for kind in kinds if kind in entries]
        if len(present) != 1:
            self.fail(node, "a timeline step needs exactly one of: " + ", ".join(kinds))
        kind = present[0]
        line = node.start_mark.line + 1
        delay = self.delay(entries["delay"]) if "delay" in entries else 0.0
        if "match" in entries and not kind.startswith("client"):
            self.fail(entries["match"], "`match` only applies to client steps")
        if kind.startswith("client") and not allow_client:
            self.fail(node, "a handshake response can only hold server frames and a close")
        if kind == "close":
            fields = self.mapping(
                entries["close"], "`close`", required=("code",), allowed=("code", "reason")
            )
            code = self.scalar(fields["code"], "a close code (an integer)", int)
            if not is_sendable_close_code(code):
                self.fail(
                    fields["code"],
                    f"{code} is not a close code that can be sent; "
                    "expected 1000-1003, 1007-1014 or 3000-4999",
                )
            reason = self.string(fields["reason"], "a close reason") if "reason" in fields else ""
            if len(reason.encode()) > 123:
                self.fail(fields["reason"], "a close reason is at most 123 bytes")
            return CloseStep(code=code, reason=reason, delay=delay, line=line)
        direction = Direction.SERVER if kind.startswith("server") else Direction.CLIENT
        value = entries[kind]
        data: JSONObject | str | bytes
        if kind.endswith("_binary"):
            text = self.string(value, "base64 data")
            try:
                data = base64.b64decode(text, validate=True)
            except ValueError:  # binascii.Error, or a character outside ASCII
                self.fail(value, "expected base64 data")
        elif isinstance(value, MappingNode):
            data = self.json(value)
        else:
            data = self.string(value, "an event (a mapping) or a raw text frame (a string)")
        match = self.match_mode(entries["match"]) if "match" in entries else None
        return FrameStep(direction=direction, data=data, delay=delay, match=match, line=line)


def loads_cassette(
    text: str,
    *,
    name: str = "cassette",
    path: Path | None = None,
    resolve_sidecar: SidecarResolver | None = None,
    limits: LoadLimits | None = None,
    fast: bool = True,
) -> Cassette:
    """Build a cassette from YAML text (no file is read).

    Args:
        text: the YAML document.
        name: the cassette's name (the file stem when loaded from a file).
        path: the file it came from, named in error messages.
        resolve_sidecar: resolves sidecar references; without it, a reference is
            an error.
        limits: the most the text may cost to load (size, aliases); by default
            :meth:`LoadLimits.from_env() <fakeupstream.storage.yaml_limits.LoadLimits.from_env>`.
        fast: read the steps written as one line of JSON with ``json``
            (:mod:`.yaml_skeleton`); ``False`` reads everything with YAML, which gives
            the same cassette, ten to fifty times slower (for tests and benchmarks).

    Raises:
        CassetteError: the text is not a valid version 1 cassette, or is over a limit.
    """
    limits = resolve_limits(limits, path)
    if len(text) > limits.max_bytes:
        raise CassetteError(
            f"the cassette is larger than {limits.max_bytes} bytes; "
            "raise FAKEUPSTREAM_MAX_CASSETTE_BYTES if it is trusted",
            path=path,
        )
    skeleton = take_out_json_steps(text, resolve_sidecar) if fast else None
    if skeleton is not None:
        cassette = _read_skeleton(skeleton, name, path, resolve_sidecar, limits)
        if cassette is not None:
            return cassette
    return _Reader(path, resolve_sidecar, limits).cassette(_compose(text, path), name)


def _read_skeleton(
    skeleton: Skeleton,
    name: str,
    path: Path | None,
    resolve_sidecar: SidecarResolver | None,
    limits: LoadLimits,
) -> Cassette | None:
    """The cassette read from ``skeleton``; ``None`` when only YAML can tell.

    See :mod:`.yaml_skeleton` for why the result is what reading the whole text gives.
    """
    try:
        root = yaml.compose(skeleton.text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    if not skeleton.verify(root):
        return None
    try:
        cassette = _Reader(path, resolve_sidecar, limits, skeleton).cassette(root, name)
    except NeedsYAML:
        return None
    except CassetteError as exc:
        if skeleton.covers(exc.line):
            return None
        raise
    return cassette if skeleton.complete() else None


def _compose(text: str, path: Path | None) -> Node | None:
    """Compose ``text`` into nodes; a YAML error names its line and column."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = f"invalid YAML: {exc.problem or exc.context}"
        raise CassetteError(
            problem,
            path=path,
            line=None if mark is None else mark.line + 1,
            column=None if mark is None else mark.column + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise CassetteError(f"invalid YAML: {exc}", path=path) from None


def resolve_limits(limits: LoadLimits | None, path: Path | None = None) -> LoadLimits:
    """``limits``, or the defaults with their environment overrides.

    Raises:
        CassetteError: an override in the environment is not a number.
    """
    if limits is not None:
        return limits
    try:
        return LoadLimits.from_env()
    except ValueError as exc:
        raise CassetteError(str(exc), path=path) from None
