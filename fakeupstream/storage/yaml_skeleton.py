"""A cassette's text with its JSON step lines taken out: the little left for PyYAML.

A recorded cassette is mostly steps written as one line of JSON each
(:mod:`.json_steps`). Before YAML sees the text, :func:`take_out_json_steps` reads
every run of such steps (consecutive, at one indentation) with ``json`` and puts one
placeholder in its place, a list item ``- !fakeupstream-steps 'N'`` followed by as
many empty lines as the run had, so every other line keeps its number and column.
The cassette reader composes this skeleton with PyYAML and, where a timeline's list
holds a placeholder, takes the run's steps instead (:meth:`Skeleton.expand`).

Why that reads what reading the whole text with YAML reads:

- The skeleton is the text itself but for the runs' lines: everything else keeps its
  line and column.
- A line can look like a step and be something else (inside a block scalar, a quoted
  string, a flow list). :meth:`Skeleton.verify` checks on the composed skeleton that
  each placeholder is an item of a block list at its run's line and column. The text
  before it is the same in both, so in the whole text too the run's first line opens
  an item of that list; the scanner took whole steps only (the line after each is not
  indented under it), so the run's items end where the placeholder ends.
- Each step reads the same: :mod:`.json_steps` reads a line only when YAML would read
  the same value from it.
- The reader meets a placeholder where it reads a timeline, and takes the run's steps,
  or anywhere else, where it fails on the placeholder's tag at the placeholder's line.

Where it cannot be sure, the caller reads the whole text with YAML
(:class:`NeedsYAML`), which gives the one true answer, errors with their line: a YAML
error in the skeleton, an alias anywhere (the alias limits count nodes), a
placeholder out of place, an error at a placeholder's line, a run in a handshake
``respond`` list (whose checks name a step's column), or a run left unread.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..cassette import FrameStep
from .json_steps import MORE_LINE, STEP_LINE, NotJSONStep, StepDecoder
from .sidecars import SidecarReference, parse_reference

__all__ = ["PLACEHOLDER", "NeedsYAML", "Skeleton", "take_out_json_steps"]

PLACEHOLDER = "!fakeupstream-steps"
"""The tag of the list item standing for a run of steps in the skeleton."""

_BLANK = re.compile(r" *\r?")


class NeedsYAML(Exception):
    """Only reading the whole text with YAML can tell what it holds."""


@dataclass(slots=True)
class _Run:
    """Steps on consecutive lines at one indentation, read from JSON."""

    index: int
    line: int  # of its first step, from 0
    column: int  # of its first step's `-`
    start: int  # offsets in the text: its first line, the line after its last
    end: int
    steps: list[FrameStep] = field(default_factory=list)
    used: bool = False


class Skeleton:
    """The text PyYAML composes, and the runs of steps it stands for."""

    def __init__(self, text: str, runs: list[_Run]) -> None:
        pieces, last = [], 0
        for run in runs:
            placeholder = f"{' ' * run.column}- {PLACEHOLDER} '{run.index}'"
            pieces += [
                text[last : run.start],
                placeholder,
                "\n" * text.count("\n", run.start, run.end),
            ]
            last = run.end
        pieces.append(text[last:])
        self.text = "".join(pieces)
        self._runs = {run.line: run for run in runs}
        self._placed: dict[int, _Run] = {}  # id() of a placeholder node -> its run

    def verify(self, root: Node | None) -> bool:
        """Tell whether each placeholder is an item of a block list where its run was.

        Also ``False`` when a node is reached twice (an alias).
        """
        seen: set[int] = set()
        todo = [] if root is None else [root]
        while todo:
            node = todo.pop()
            if id(node) in seen:
                return False
            seen.add(id(node))
            if isinstance(node, ScalarNode):
                if node.tag == PLACEHOLDER:
                    return False  # not an item of a block list
            elif isinstance(node, SequenceNode):
                for item in node.value:
                    if not self._place(item, node):
                        todo.append(item)
            elif isinstance(node, MappingNode):
                todo += [part for pair in node.value for part in pair]
        return len(self._placed) == len(self._runs)

    def _place(self, item: Node, parent: SequenceNode) -> bool:
        """Record ``item`` if it is the placeholder of a run, in the right place."""
        if not isinstance(item, ScalarNode) or item.tag != PLACEHOLDER:
            return False
        mark = item.start_mark
        run = self._runs.get(mark.line)
        if (
            run is None
            or parent.flow_style
            or item.style != "'"
            or item.value != str(run.index)
            or mark.column != run.column + 2
            or id(item) in self._placed
        ):
            return False  # verify() meets it again as a scalar and fails
        self._placed[id(item)] = run
        return True

    def expand(self, items: list[Node], *, close_last: bool) -> list[Node | FrameStep]:
        """A list of steps with each placeholder replaced by its run's steps.

        Raises:
            NeedsYAML: a run in a handshake response (``close_last``), or used twice.
        """
        out: list[Node | FrameStep] = []
        for item in items:
            run = self._placed.get(id(item))
            if run is None:
                out.append(item)
                continue
            if close_last or run.used:
                raise NeedsYAML
            run.used = True
            out += run.steps
        return out

    def complete(self) -> bool:
        """Tell whether every run was read as part of a timeline."""
        return all(run.used for run in self._runs.values())

    def covers(self, line: int | None) -> bool:
        """Tell whether ``line`` (from 1) holds a placeholder: an error there needs YAML."""
        return line is not None and line - 1 in self._runs


def take_out_json_steps(
    text: str, resolve_sidecar: Callable[[SidecarReference], str] | None
) -> Skeleton | None:
    """The skeleton of ``text``, or ``None`` when it has no step written as JSON.

    Args:
        text: a cassette.
        resolve_sidecar: what :func:`~.yaml_reader.loads_cassette` was given.
    """
    # YAML counts U+0085, U+2028, U+2029 and a lone CR as line breaks; lines here are
    # counted at LF, so a text with any of them is left to YAML.
    if any(char in text for char in "\x85\u2028\u2029") or text.count("\r") != text.count("\r\n"):
        return None
    resolve = None
    if resolve_sidecar is not None:
        resolver = resolve_sidecar

        def resolve(reference: Any) -> str:
            return resolver(parse_reference(reference))

    runs = _Scanner(text, StepDecoder(resolve)).runs()
    return Skeleton(text, runs) if runs else None


class _Scanner:
    """Finds the runs of steps written as JSON, line by line."""

    def __init__(self, text: str, decoder: StepDecoder) -> None:
        self.text = text
        self.size = len(text)
        self.decoder = decoder

    def runs(self) -> list[_Run]:
        runs: list[_Run] = []
        current: _Run | None = None
        pos = line = 0
        while pos < self.size:
            end = self._end(pos)
            found = STEP_LINE.fullmatch(self.text, pos, end)
            read = None if found is None else self._step(found, end, line)
            if read is None:
                current = None
                pos, line = end + 1, line + 1
                continue
            step, column, after, lines = read
            if current is None or current.end != pos or current.column != column:
                current = _Run(len(runs), line, column, pos, after)
                runs.append(current)
            current.steps.append(step)
            current.end = after
            pos, line = after, line + lines
        return runs

    def _end(self, pos: int) -> int:
        end = self.text.find("\n", pos)
        return self.size if end < 0 else end

    def _step(
        self, found: re.Match[str], end: int, line: int
    ) -> tuple[FrameStep, int, int, int] | None:
        """The step on line ``line``: it, its column, where the next line starts, how
        many lines it takes; ``None`` if YAML must read it."""
        indent = len(found.group(1))
        more: dict[str, str] = {}
        pos, lines = end + 1, 1
        while pos < self.size and self.text.startswith(" " * (indent + 2), pos):
            end = self._end(pos)
            key = MORE_LINE.fullmatch(self.text, pos + indent + 2, end)
            if key is None:
                break
            if key.group(1) in more:
                return None  # a duplicate key: YAML's error to report
            more[key.group(1)] = key.group(2)
            pos, lines = end + 1, lines + 1
        if self._indented_under(pos, indent):
            return None  # more of this step follows, in a form read by YAML
        try:
            step = self.decoder.step(found.group(2), found.group(3), more, line + 1)
        except NotJSONStep:
            return None
        return step, indent, min(pos, self.size), lines

    def _indented_under(self, pos: int, indent: int) -> bool:
        """Tell whether the next line with content is indented more than ``indent``."""
        while pos < self.size:
            end = self._end(pos)
            if not _BLANK.fullmatch(self.text, pos, end):
                return self.text.startswith(" " * (indent + 1), pos)
            pos = end + 1
        return False
