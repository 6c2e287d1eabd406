"""Synthesized GA responses: the event sequence the live API streams for one reply (sans-I/O).

The orders are the GA protocol's (reference sections 6.4, 6.8 and 6.10): text
replies stream ``response.output_text.*``, audio replies stream
``response.output_audio.*`` with their transcript, function calls stream
``response.function_call_arguments.*``; each ends with ``response.done`` and
``rate_limits.updated``. The output is plain event dicts (without ``event_id``,
which the caller adds).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

__all__ = ["audio_response", "function_call_response", "text_response"]

_Event = dict[str, Any]
# 100 ms of silence per audio delta (16-bit PCM at 24 kHz).
_SILENCE = base64.b64encode(bytes(4800)).decode("ascii")
_PCM = {"type": "audio/pcm", "rate": 24000}


def _usage(text: str, *, audio: bool = False) -> _Event:
    output = max(1, len(text.split()))
    return {
        "total_tokens": 10 + output,
        "input_tokens": 10,
        "output_tokens": output,
        "input_token_details": {
            "text_tokens": 10,
            "audio_tokens": 0,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {
            "text_tokens": 0 if audio else output,
            "audio_tokens": output if audio else 0,
        },
    }


def _response(
    response_id: str, conversation_id: str, modalities: list[str], voice: Any, **fields: Any
) -> _Event:
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": "in_progress",
        "status_details": None,
        "output": [],
        "conversation_id": conversation_id,
        "output_modalities": modalities,
        "max_output_tokens": "inf",
        "audio": {"output": {"format": _PCM, "voice": voice}},
        "usage": None,
        "metadata": None,
        **fields,
    }


def _chunks(text: str) -> list[str]:
    """Split text into word-sized deltas, as the live API streams it."""
    words = text.split(" ")
    return [word + (" " if n < len(words) - 1 else "") for n, word in enumerate(words)] or [""]


def _frame(
    new_id: Callable[[str], str],
    previous: str | None,
    modalities: list[str],
    voice: Any,
    item: _Event,
    streamed: list[_Event],
    done_item: _Event,
    usage: _Event,
) -> list[_Event]:
    """The common frame of a one-item response around the item's own ``streamed`` events."""
    response_id = new_id("resp")
    conversation = new_id("conv")
    for event in streamed:
        event.setdefault("response_id", response_id)
    return [
        {
            "type": "response.created",
            "response": _response(response_id, conversation, modalities, voice),
        },
        {
            "type": "response.output_item.added",
            "response_id": response_id,
            "output_index": 0,
            "item": item,
        },
        {"type": "conversation.item.added", "previous_item_id": previous, "item": item},
        *streamed,
        {"type": "conversation.item.done", "previous_item_id": previous, "item": done_item},
        {
            "type": "response.output_item.done",
            "response_id": response_id,
            "output_index": 0,
            "item": done_item,
        },
        {
            "type": "response.done",
            "response": _response(
                response_id,
                conversation,
                modalities,
                voice,
                status="completed",
                output=[done_item],
                usage=usage,
            ),
        },
        {
            "type": "rate_limits.updated",
            "rate_limits": [
                {"name": "tokens", "limit": 15000000, "remaining": 14999000, "reset_seconds": 0.004}
            ],
        },
    ]


def text_response(
    text: str, new_id: Callable[[str], str], previous: str | None, voice: Any
) -> list[_Event]:
    """A text reply (reference 6.4): deltas word by word, then the done events."""
    item_id = new_id("item")
    item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant"}
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    streamed: list[_Event] = [
        {"type": "response.content_part.added", **where, "part": {"type": "text", "text": ""}},
        *(
            {"type": "response.output_text.delta", **where, "delta": delta}
            for delta in _chunks(text)
        ),
        {"type": "response.output_text.done", **where, "text": text},
        {"type": "response.content_part.done", **where, "part": {"type": "text", "text": text}},
    ]
    done = {**item, "status": "completed", "content": [{"type": "output_text", "text": text}]}
    return _frame(
        new_id,
        previous,
        ["text"],
        voice,
        {**item, "content": []},
        streamed,
        done,
        _usage(text),
    )


def audio_response(
    transcript: str, new_id: Callable[[str], str], previous: str | None, voice: Any
) -> list[_Event]:
    """An audio reply (reference 6.10): silent PCM deltas with the transcript's deltas."""
    item_id = new_id("item")
    item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant"}
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    streamed: list[_Event] = [
        {
            "type": "response.content_part.added",
            **where,
            "part": {"type": "audio", "transcript": ""},
        }
    ]
    for delta in _chunks(transcript):
        streamed.append({"type": "response.output_audio.delta", **where, "delta": _SILENCE})
        streamed.append({"type": "response.output_audio_transcript.delta", **where, "delta": delta})
    streamed += [
        {"type": "response.output_audio.done", **where},
        {"type": "response.output_audio_transcript.done", **where, "transcript": transcript},
        {
            "type": "response.content_part.done",
            **where,
            "part": {"type": "audio", "transcript": transcript},
        },
    ]
    content = [{"type": "output_audio", "transcript": transcript}]
    done = {**item, "status": "completed", "content": content}
    return _frame(
        new_id,
        previous,
        ["audio"],
        voice,
        {**item, "content": []},
        streamed,
        done,
        _usage(transcript, audio=True),
    )


def function_call_response(
    name: str, arguments: str, new_id: Callable[[str], str], previous: str | None, voice: Any
) -> list[_Event]:
    """A function call (reference 6.8): the arguments streamed, then the response ends."""
    item_id, call_id = new_id("item"), new_id("call")
    item = {
        "id": item_id,
        "type": "function_call",
        "status": "in_progress",
        "name": name,
        "call_id": call_id,
        "arguments": "",
    }
    where = {"item_id": item_id, "output_index": 0, "call_id": call_id}
    streamed: list[_Event] = [
        {"type": "response.function_call_arguments.delta", **where, "delta": arguments},
        {
            "type": "response.function_call_arguments.done",
            **where,
            "name": name,
            "arguments": arguments,
        },
    ]
    done = {**item, "status": "completed", "arguments": arguments}
    return _frame(
        new_id,
        previous,
        ["text"],
        voice,
        item,
        streamed,
        done,
        _usage(arguments),
    )
