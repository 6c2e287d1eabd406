"""What a rule sends: its reply turned into GA events from the session's state (sans-I/O)."""

from __future__ import annotations

from typing import Any

from .ga import error_event
from .rules import LAST_USER_TEXT, Rule, RuleClose
from .session_model import SessionModel
from .synthesis import audio_response, function_call_response, text_response

__all__ = ["rule_answer"]


def rule_answer(
    rules: tuple[Rule, ...] | list[Rule], event: dict[str, Any], model: SessionModel
) -> tuple[Rule, list[dict[str, Any]], RuleClose | None] | None:
    """The first rule that answers ``event``, the events it sends, and its close if any.

    Returns ``None`` when no rule holds. The events are observed by ``model``.
    """
    for rule in rules:
        if rule.holds(event, model):
            return rule, *_reply(rule, event, model)
    return None


def _reply(
    rule: Rule, event: dict[str, Any], model: SessionModel
) -> tuple[list[dict[str, Any]], RuleClose | None]:
    if rule.close is not None:
        return [], rule.close
    if rule.error is not None:
        code, message = rule.error
        sent = event.get("event_id")
        error = error_event(
            "",
            code=code,
            message=message,
            client_event_id=sent if isinstance(sent, str) else None,
        )
        del error["event_id"]
        return model.emit([error]), None
    previous, voice = model.last_item_id(), model.voice()
    if rule.function_call is not None:
        name, arguments = rule.function_call
        tools = model.function_tools()
        chosen = name or (tools[0] if tools else "function")
        made = function_call_response(chosen, arguments, model.new_id, previous, voice)
        return model.emit(made), None
    said = (rule.text if rule.text is not None else rule.audio) or ""
    said = said.replace(LAST_USER_TEXT, model.last_user_text())
    if rule.audio is not None or "audio" in model.output_modalities(event):
        return model.emit(audio_response(said, model.new_id, previous, voice)), None
    return model.emit(text_response(said, model.new_id, previous, voice)), None
