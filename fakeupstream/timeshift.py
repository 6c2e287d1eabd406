"""Move the epoch-second fields of events in time (sans-I/O).

A cassette has one time anchor, ``recorded.at``. Replay moves every ``expires_at``
and ``created_at`` of the server events and of the recorded HTTP answers from that
anchor to now (:func:`seconds_since`), so a recorded session or client secret never
looks expired; the recorder moves an episode (or an HTTP exchange) appended to an
older cassette onto that cassette's anchor. Both use :func:`shift_times`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["TIME_FIELDS", "seconds_since", "shift_times"]

TIME_FIELDS = frozenset({"expires_at", "created_at"})
"""Integer fields holding epoch seconds (positive; ``0`` means "never" and stays)."""


def _is_epoch(key: str, value: Any) -> bool:
    return key in TIME_FIELDS and type(value) is int and value > 0


def seconds_since(anchor: datetime | None, now: float) -> int:
    """How far replay moves a cassette's times: from its anchor to ``now`` (Unix time).

    Zero for a cassette with no anchor (its times are left as they are).
    """
    return 0 if anchor is None else round(now - anchor.timestamp())


def shift_times(value: Any, seconds: int) -> Any:
    """Return ``value`` with every time field, at any depth, moved by ``seconds``.

    The input is never modified. Where nothing moves (no time field, or
    ``seconds == 0``) the very same object comes back, so a caller can tell
    cheaply whether anything changed (``shifted is value``).
    """
    if not seconds:
        return value
    if isinstance(value, dict):
        moved = {
            key: item + seconds if _is_epoch(key, item) else shift_times(item, seconds)
            for key, item in value.items()
        }
        return value if all(moved[key] is item for key, item in value.items()) else moved
    if isinstance(value, list):
        items = [shift_times(item, seconds) for item in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    return value
