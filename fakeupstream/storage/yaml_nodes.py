"""Typed reading of composed YAML nodes, each failure naming the file, line and column.

The cassette reader (:mod:`.yaml_reader`) builds the model from nodes with these
methods: a mapping with exactly the allowed keys, a list, a scalar of the expected
type (a YAML ``true`` never passes for a number), string pairs, a delay. No tag
ever constructs an object here, and every node counts against the alias budget
(:mod:`.yaml_limits`), so an alias bomb fails fast with a position.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..exceptions import CassetteError
from .yaml_limits import AliasBudget, BudgetExceeded, LoadLimits

__all__ = ["JSON_SCALARS", "MAP", "SEQ", "STR", "TAG", "NodeReader", "describe"]

TAG = "tag:yaml.org,2002:"
STR = TAG + "str"
MAP = TAG + "map"
SEQ = TAG + "seq"
JSON_SCALARS = {TAG + "str", TAG + "int", TAG + "float", TAG + "bool", TAG + "null"}
_T = TypeVar("_T")


class NodeReader:
    """Reads YAML nodes into Python values, failing with the node's position.

    Args:
        path: the file the nodes came from, named in errors.
        limits: the alias budget (by default :class:`LoadLimits`' defaults).
    """

    def __init__(self, path: Path | None, limits: LoadLimits | None = None) -> None:
        self.path = path
        self._scalars = yaml.constructor.SafeConstructor()
        self._budget = AliasBudget(limits if limits is not None else LoadLimits())

    # -- errors ---------------------------------------------------------------------------

    def fail(self, node: Node, problem: str) -> NoReturn:
        mark = node.start_mark
        raise CassetteError(problem, path=self.path, line=mark.line + 1, column=mark.column + 1)

    def enter(self, node: Node) -> bool:
        """Count ``node`` against the alias budget; ``True``: call ``self._budget.leave()``."""
        if not isinstance(node, MappingNode | SequenceNode):
            return False
        try:
            return self._budget.enter(node, len(node.value))
        except BudgetExceeded as exc:
            self.fail(node, str(exc))

    def visit(self, node: Node) -> None:
        """Count a node whose children the caller reads itself."""
        if self.enter(node):
            self._budget.leave()

    # -- generic shapes -------------------------------------------------------------------

    def mapping(
        self, node: Node, what: str, *, required: tuple[str, ...] = (), allowed: tuple[str, ...]
    ) -> dict[str, Node]:
        """Return the mapping's key → value nodes, checking the keys."""
        if not isinstance(node, MappingNode) or node.tag != TAG + "map":
            self.fail(node, f"expected {what} (a mapping), got {describe(node)}")
        self.visit(node)
        entries: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node)
            if key in entries:
                self.fail(key_node, f"duplicate key {key!r} in {what}")
            if key not in allowed:
                self.fail(
                    key_node,
                    f"unknown key {key!r} in {what}; expected one of: " + ", ".join(allowed),
                )
            entries[key] = value_node
        missing = [key for key in required if key not in entries]
        if missing:
            self.fail(node, f"{what} is missing required key {missing[0]!r}")
        return entries

    def key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode) or node.tag != TAG + "str":
            self.fail(node, f"expected a string key, got {describe(node)}")
        return str(node.value)

    def sequence(self, node: Node, what: str) -> list[Node]:
        if not isinstance(node, SequenceNode) or node.tag != TAG + "seq":
            self.fail(node, f"expected {what} (a list), got {describe(node)}")
        self.visit(node)
        return list(node.value)

    def scalar(self, node: Node, what: str, kind: type[_T] | tuple[type, ...]) -> Any:
        if not isinstance(node, ScalarNode) or node.tag not in JSON_SCALARS:
            self.fail(node, f"expected {what}, got {describe(node)}")
        value = self._scalars.construct_object(node)
        # bool is an int in Python; a YAML `true` must not pass for a number.
        if isinstance(value, bool) and bool not in _as_tuple(kind):
            self.fail(node, f"expected {what}, got a boolean")
        if not isinstance(value, kind):
            self.fail(node, f"expected {what}, got {describe(node)}")
        return value

    def string(self, node: Node, what: str) -> str:
        return str(self.scalar(node, what, str))

    def names(self, node: Node, what: str) -> tuple[str, ...]:
        """A single string or a list of strings."""
        if isinstance(node, SequenceNode):
            return tuple(self.string(item, what) for item in self.sequence(node, what))
        return (self.string(node, what),)

    def pairs(self, node: Node, what: str) -> tuple[tuple[str, str], ...]:
        """A mapping of string → string (header or query values)."""
        if not isinstance(node, MappingNode):
            self.fail(
                node, f"expected {what} (a mapping of names to strings), got {describe(node)}"
            )
        self.visit(node)
        result = []
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = self.key(key_node)
            if key.lower() in seen:
                self.fail(key_node, f"duplicate name {key!r} in {what}")
            seen.add(key.lower())
            value = self.scalar(value_node, f"a string value for {key!r}", (str, int, float))
            result.append((key, str(value)))
        return tuple(result)

    def delay(self, node: Node) -> float:
        number = self.scalar(node, "a delay in seconds (a number)", (int, float))
        try:
            value = float(number)
        except OverflowError:  # an int of hundreds of digits
            value = math.inf
        if not math.isfinite(value) or value < 0:
            self.fail(node, "expected a delay in seconds, zero or more")
        # Microseconds are plenty, and rounding here makes load -> dump -> load exact.
        return round(value, 6)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def describe(node: Node) -> str:
    tag = str(node.tag)
    standard = tag.startswith(TAG) and tag.removeprefix(TAG) in (
        "map",
        "seq",
        "str",
        "int",
        "float",
        "bool",
        "null",
        "timestamp",
        "binary",
    )
    if not standard:
        return f"the YAML tag {tag!r} (tags that build objects are not allowed)"
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    kind = tag.removeprefix(TAG)
    value = str(node.value)
    shown = value if len(value) <= 30 else value[:27] + "..."
    return f"{kind} {shown!r}"
