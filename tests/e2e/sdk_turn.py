"""The text turn the official SDK's tests play: a session update, a message, a reply."""

from __future__ import annotations

from typing import Any


async def text_turn(
    conn: Any, events: list[Any], *, until: tuple[str, ...] = ("response.done", "error")
) -> None:
    """Play the turn on an SDK realtime connection, appending every event to ``events``.

    Returns after an event whose type is in ``until``; with ``until=()``, only when the
    connection ends (the SDK then raises its close).
    """
    events.append(await conn.recv())
    await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
    events.append(await conn.recv())
    await conn.conversation.item.create(
        item={
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Say hi in three words"}],
        }
    )
    await conn.response.create(response={"output_modalities": ["text"]})
    async for event in conn:
        events.append(event)
        if event.type in until:
            return
