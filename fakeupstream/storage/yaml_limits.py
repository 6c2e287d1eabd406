"""How much a cassette file may cost to load: its size, its aliases, what they expand to.

YAML aliases let a few hundred bytes stand for billions of nodes (nine levels of
nine aliases each is 9⁹). Composing such a file is cheap, because the composer
shares aliased nodes; building the cassette is not, because each alias becomes a
copy. So the reader counts as it builds and stops at the first node over budget,
naming its line, long before the copies cost time or memory:

- ``max_bytes``: the file (or text) size, checked before parsing;
- ``max_aliases``: how many aliases the document may use;
- ``max_alias_nodes``: how many nodes the aliases may add when expanded. The nodes
  written out in the file are bounded by its size already, so the total after
  expansion is at most those plus this.

The defaults fit any real cassette (the recorder never writes aliases); each can be
raised with an environment variable, or per call with a :class:`LoadLimits`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ENV_MAX_ALIASES",
    "ENV_MAX_ALIAS_NODES",
    "ENV_MAX_BYTES",
    "AliasBudget",
    "BudgetExceeded",
    "LoadLimits",
]

ENV_MAX_BYTES = "FAKEUPSTREAM_MAX_CASSETTE_BYTES"
ENV_MAX_ALIASES = "FAKEUPSTREAM_MAX_YAML_ALIASES"
ENV_MAX_ALIAS_NODES = "FAKEUPSTREAM_MAX_YAML_ALIAS_NODES"


@dataclass(frozen=True, slots=True)
class LoadLimits:
    """The most a cassette may cost to load (see the module docstring)."""

    max_bytes: int = 256 * 1024 * 1024
    max_aliases: int = 1_000
    max_alias_nodes: int = 100_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LoadLimits:
        """The defaults, each overridden by its environment variable when set.

        Raises:
            ValueError: a variable is set to something other than a whole number ≥ 0.
        """
        env = os.environ if environ is None else environ
        default = cls()
        return cls(
            max_bytes=_whole(env, ENV_MAX_BYTES, default.max_bytes),
            max_aliases=_whole(env, ENV_MAX_ALIASES, default.max_aliases),
            max_alias_nodes=_whole(env, ENV_MAX_ALIAS_NODES, default.max_alias_nodes),
        )


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip().replace("_", "")
    if not text:
        return default
    if not text.isdigit():
        raise ValueError(f"{name} must be a whole number of zero or more, got {text!r}")
    return int(text)


class AliasBudget:
    """Counts aliases and the nodes they expand to while a document is built.

    The composer hands the reader the *same* node object for an anchor and each of
    its aliases, so a collection node seen a second time is an alias being expanded.
    """

    def __init__(self, limits: LoadLimits) -> None:
        self.limits = limits
        self.aliases = 0
        self.alias_nodes = 0
        self._seen: set[int] = set()
        self._expanding = 0  # > 0 while inside a copy

    def enter(self, node: object, size: int) -> bool:
        """Account for building collection ``node`` with ``size`` children.

        Returns:
            Whether ``node`` is being copied (an alias, or inside one); if so, call
            :meth:`leave` once it is built.

        Raises:
            BudgetExceeded: over a limit; report it at ``node``'s line.
        """
        key = id(node)
        if not self._expanding and key not in self._seen:
            self._seen.add(key)
            return False
        if not self._expanding:
            self.aliases += 1
        self._expanding += 1
        self.alias_nodes += 1 + size
        limits = self.limits
        if self.aliases > limits.max_aliases:
            raise BudgetExceeded(
                f"too many YAML aliases (more than {limits.max_aliases}); "
                f"raise {ENV_MAX_ALIASES} if this cassette is trusted"
            )
        if self.alias_nodes > limits.max_alias_nodes:
            raise BudgetExceeded(
                f"YAML aliases expand to more than {limits.max_alias_nodes} nodes "
                f"(an alias bomb?); raise {ENV_MAX_ALIAS_NODES} if this cassette is trusted"
            )
        return True

    def leave(self) -> None:
        """A node for which :meth:`enter` returned ``True`` is built."""
        self._expanding -= 1


class BudgetExceeded(ValueError):
    """A document costs more to build than its :class:`LoadLimits` allow."""
