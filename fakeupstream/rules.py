"""Rules: answers a cassette (or a test) gives to client events the recording does not have.

A rule says *when* (the client event's ``type``, and optionally a regular expression
on the last user text, whether the session declares a function tool, and what the
last conversation item is) and *what* to reply: ``text`` (streamed as text, or as
audio with that transcript when the response's modality is audio), ``audio`` (always
audio, with that transcript), a ``function_call`` (the first declared function tool
unless named), an ``error`` event, or a ``close``. ``{last_user_text}`` in a text is
replaced by the last user message's text.

Precedence, for each client event: the recording first, then the rules in order
(a test's rules before the cassette's), then the GA session model. Sans-I/O;
:mod:`.rule_replies` turns a rule into the events it sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the model imports the cassette, which holds rules
    from .session_model import SessionModel

__all__ = ["LAST_USER_TEXT", "Rule", "RuleClose"]

LAST_USER_TEXT = "{last_user_text}"


@dataclass(frozen=True, slots=True)
class RuleClose:
    """A rule's close: the server closes with this code and reason."""

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """When a client event matches, what to reply (exactly one reply field is set).

    Attributes:
        event: the client event ``type`` it answers.
        text_matches: a regular expression searched in the last user text.
        tools: ``True``: only when the session declares a function tool; ``False``:
            only when it declares none.
        last_item: only when the last conversation item is this (``user``,
            ``assistant``, ``function_call``, ``function_call_output``...).
        text: reply with this text (audio with this transcript in an audio response).
        audio: reply with audio whose transcript is this.
        function_call: reply with a call: ``(name or None for the first tool, arguments)``.
        error: reply with an ``error`` event: ``(code, message)``.
        close: close the connection.
        line: the cassette line, for messages.
    """

    event: str
    text_matches: str | None = None
    tools: bool | None = None
    last_item: str | None = None
    text: str | None = None
    audio: str | None = None
    function_call: tuple[str | None, str] | None = None
    error: tuple[str, str] | None = None
    close: RuleClose | None = None
    line: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        replies = (self.text, self.audio, self.function_call, self.error, self.close)
        if sum(reply is not None for reply in replies) != 1:
            raise ValueError(
                "a rule replies with exactly one of: text, audio, function_call, error, close"
            )
        if self.text_matches is not None:
            try:
                re.compile(self.text_matches)  # a bad pattern fails when the rule is made
            except re.error as exc:
                raise ValueError(
                    f"invalid regular expression {self.text_matches!r}: {exc}"
                ) from None

    def holds(self, client_event: dict[str, Any], model: SessionModel) -> bool:
        """Tell whether this rule answers ``client_event`` given the session's state."""
        if client_event.get("type") != self.event:
            return False
        if self.tools is not None and bool(model.function_tools()) is not self.tools:
            return False
        if self.last_item is not None and model.last_item_type() != self.last_item:
            return False
        return self.text_matches is None or bool(
            re.search(self.text_matches, model.last_user_text())
        )
