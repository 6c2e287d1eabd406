"""Fresh ids for a replayed connection, consistent within it (sans-I/O).

By default a replay sends the ids as recorded. A client that keeps state across
connections (or a test that wants to see real-looking uniqueness) can ask for
fresh ones: every recorded ``sess_``/``resp_``/``item_``/``conv_``/``call_``/
``event_`` id is replaced by a new id of the same shape, the same one each time
it appears in the connection, and ids the client echoes back (an ``item_id`` to
truncate, a ``call_id`` with a function result) are mapped back to the recorded
ones before matching.
"""

from __future__ import annotations

import hashlib
import re
import string
from typing import Any

__all__ = ["IdRewriter", "base62"]

_ID = re.compile(r"^(?P<prefix>sess|resp|item|conv|call|event|rtc)_(?P<body>[A-Za-z0-9]{6,})$")
_ALPHABET = string.ascii_letters + string.digits


def base62(number: int, width: int) -> str:
    """``number`` (modulo ``62**width``) as exactly ``width`` letters and digits.

    The live API's ids are ``prefix_`` followed by letters and digits; this makes
    ids of that shape from a counter or a digest.
    """
    # Most numbers are small counters: only their significant digits are worked out,
    # the rest is the zero digit ("a").
    number %= len(_ALPHABET) ** width
    digits = ""
    while number:
        number, rest = divmod(number, len(_ALPHABET))
        digits = _ALPHABET[rest] + digits
    return digits.rjust(width, _ALPHABET[0])


class IdRewriter:
    """Maps recorded ids to fresh ones (and back) for one connection.

    Args:
        salt: makes this connection's ids differ from another's (e.g. the connection
            number); the same salt gives the same ids, so a replay stays reproducible.
    """

    def __init__(self, salt: str) -> None:
        self._salt = salt
        self._fresh: dict[str, str] = {}
        self._recorded: dict[str, str] = {}

    def fresh(self, recorded: str) -> str:
        """The fresh id standing for ``recorded`` (``recorded`` itself if it is no id)."""
        known = self._fresh.get(recorded)
        if known is not None:
            return known
        match = _ID.match(recorded)
        if match is None:
            return recorded
        body = match["body"]
        digest = hashlib.blake2b(f"{self._salt}:{recorded}".encode(), digest_size=32).digest()
        new = f"{match['prefix']}_{base62(int.from_bytes(digest, 'big'), len(body))}"
        self._fresh[recorded] = new
        self._recorded[new] = recorded
        return new

    def outgoing(self, value: Any) -> Any:
        """A copy of a server event with every id replaced by its fresh id."""
        if isinstance(value, dict):
            return {key: self.outgoing(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.outgoing(item) for item in value]
        if isinstance(value, str):
            return self.fresh(value)
        return value

    def incoming(self, value: Any) -> Any:
        """A copy of a client event with the fresh ids it echoes mapped back."""
        if isinstance(value, dict):
            return {key: self.incoming(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.incoming(item) for item in value]
        if isinstance(value, str):
            return self._recorded.get(value, value)
        return value
