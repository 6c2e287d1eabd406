"""What the fake does with a client event its cassette did not expect (sans-I/O).

Three policies, one resolver (the record-mode pattern: a ``str`` enum and a parser
that lists the valid values):

- ``emulate`` (default): the GA session model answers it, as the live API would,
  and replay carries on; the report lists it as emulated, not as a mismatch;
- ``error``: an ``error`` event (``unexpected_client_event``) and a mismatch;
- ``close``: the same error event, then close 1008 with a reason naming the step
  and line, so a waiting client fails at once instead of timing out.

Whatever the policy, an event nobody can answer (an unexpected ``response.create``
with no rule, say) is a mismatch, and the client always gets an error frame.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["POLICY_CLOSE_CODE", "OnUnexpected", "close_reason", "parse_on_unexpected"]

POLICY_CLOSE_CODE = 1008
"""Policy violation: the close code of the ``close`` policy."""
_MAX_REASON = 123  # bytes, RFC 6455 section 5.5


class OnUnexpected(StrEnum):
    """The unexpected-event policy."""

    EMULATE = "emulate"
    ERROR = "error"
    CLOSE = "close"


def parse_on_unexpected(text: str) -> OnUnexpected:
    """Return the policy named ``text`` (any letter case, surrounding blanks ignored).

    Raises:
        ValueError: no such policy; the message lists the valid ones.
    """
    try:
        return OnUnexpected(text.strip().lower())
    except ValueError:
        valid = ", ".join(policy.value for policy in OnUnexpected)
        raise ValueError(
            f"unknown unexpected-event policy {text!r}; expected one of: {valid}"
        ) from None


def close_reason(event_type: object, step: int | None, line: int | None) -> str:
    """The close reason of the ``close`` policy: what arrived, and where, in at most 123 bytes."""
    where = "after the last step" if step is None else f"at step {step}"
    if line is not None:
        where += f" (line {line})"
    shown = str(event_type)
    reason = f"unexpected client event {shown!r} {where}"
    while len(reason.encode()) > _MAX_REASON:  # only a very long event type gets here
        shown = shown[: max(0, len(shown) - 8)]
        reason = f"unexpected client event {shown + '...'!r} {where}"
    return reason
