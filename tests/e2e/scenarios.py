"""The twelve realtime scenarios of the gateway's end-to-end suite, as reusable steps.

Each scenario is an async function that takes a :class:`Dial` (how to open a
client connection: through the proxy, or straight to an upstream) and asserts
what the scenario promises. ``test_realtime_ws.py`` runs them through the proxy
against the fake upstream; the recorder's round-trip test runs the very same
steps through proxy → recorder → stand-in upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

TIMEOUT = 5.0
AUTH = {"Authorization": "Bearer sk-test-e2e"}
TEXT_SESSION = {"type": "realtime", "output_modalities": ["text"]}

Dial = Callable[..., contextlib.AbstractAsyncContextManager[ClientConnection]]
"""``dial(headers=AUTH, model="gpt-realtime")`` → an async context manager of a client."""


def dialer(realtime_url: Callable[[str | None], str]) -> Dial:
    """Build a :data:`Dial` from a function mapping a model (or ``None``) to a URL."""

    def dial(
        headers: dict[str, str] | None = None, model: str | None = "gpt-realtime"
    ) -> contextlib.AbstractAsyncContextManager[ClientConnection]:
        return connect(
            realtime_url(model),
            additional_headers=AUTH if headers is None else headers,
            open_timeout=TIMEOUT,
            max_size=None,
            compression=None,
        )

    return dial


async def recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        message = await ws.recv()
    assert isinstance(message, str)
    event: dict[str, Any] = json.loads(message)
    return event


async def recv_type(ws: ClientConnection, event_type: str) -> dict[str, Any]:
    """Skip events until one of ``event_type`` arrives (failing on an ``error``)."""
    while True:
        event = await recv(ws)
        if event["type"] == event_type:
            return event
        assert event["type"] != "error", f"unexpected error while waiting: {event}"


async def send(ws: ClientConnection, event: dict[str, Any]) -> None:
    await ws.send(json.dumps(event))


async def text_session(ws: ClientConnection) -> dict[str, Any]:
    """Wait for session.created, switch the session to text; return session.created."""
    created = await recv_type(ws, "session.created")
    await send(ws, {"type": "session.update", "session": TEXT_SESSION})
    updated = await recv_type(ws, "session.updated")
    assert updated["session"]["output_modalities"] == ["text"]
    return created


async def ask(ws: ClientConnection, text: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Send a user message and ask for a text response; return the deltas and response.done."""
    await send(ws, user_message(text))
    await send(ws, {"type": "response.create", "response": {"output_modalities": ["text"]}})
    deltas = []
    while True:
        event = await recv(ws)
        assert event["type"] != "error", event
        if event["type"] == "response.output_text.delta":
            deltas.append(event)
        elif event["type"] == "response.done":
            return deltas, event


def user_message(text: str) -> dict[str, Any]:
    """A ``conversation.item.create`` carrying one user text message."""
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def text_of(deltas: list[dict[str, Any]]) -> str:
    return "".join(delta["delta"] for delta in deltas)


# -- the twelve scenarios -----------------------------------------------------------------


async def connect_gets_session_created(dial: Dial) -> None:
    """1. connect → session.created with a session that has a model."""
    async with dial() as ws:
        created = await recv(ws)
        assert created["type"] == "session.created"
        assert created["session"]["model"]


async def session_update_to_text(dial: Dial) -> None:
    """2. session.update to text output → session.updated with output_modalities ["text"]."""
    async with dial() as ws:
        await text_session(ws)


async def text_round_trip(dial: Dial) -> None:
    """3. a user message + response.create → non-empty text from the deltas."""
    async with dial() as ws:
        await text_session(ws)
        deltas, done = await ask(ws, "Say hi in three words")
        assert text_of(deltas).strip()
        assert done["response"]["status"] == "completed"


async def multi_turn_remembers(dial: Dial) -> None:
    """4. "My name is Alice." → reply; "What is my name?" → a reply containing "alice"."""
    async with dial() as ws:
        await text_session(ws)
        first, _ = await ask(ws, "My name is Alice.")
        assert text_of(first)
        second, _ = await ask(ws, "What is my name?")
        assert "alice" in text_of(second).lower()


async def item_create_is_added(dial: Dial) -> None:
    """5. conversation.item.create → conversation.item.added whose item has role user."""
    async with dial() as ws:
        await recv_type(ws, "session.created")
        await send(ws, user_message("Hello there"))
        added = await recv_type(ws, "conversation.item.added")
        assert added["item"]["role"] == "user"
        await recv_type(ws, "conversation.item.done")


async def cancel_mid_stream(dial: Dial) -> None:
    """6. a long essay; at the first delta, response.cancel → response.done cancelled."""
    async with dial() as ws:
        await text_session(ws)
        await send(ws, user_message("Write a long essay about the history of computing."))
        await send(ws, {"type": "response.create", "response": {"output_modalities": ["text"]}})
        await recv_type(ws, "response.output_text.delta")
        await send(ws, {"type": "response.cancel"})
        done = await recv_type(ws, "response.done")
        assert done["response"]["status"] == "cancelled"
        await recv_type(ws, "rate_limits.updated")


async def session_created_schema(dial: Dial) -> None:
    """7. session.created carries the GA session shape."""
    async with dial() as ws:
        created = await recv(ws)
    assert created["type"] == "session.created"
    assert isinstance(created["event_id"], str) and created["event_id"]
    session = created["session"]
    assert isinstance(session["id"], str) and session["id"]
    assert isinstance(session["model"], str)
    assert isinstance(session["output_modalities"], list)
    audio = session["audio"]
    assert isinstance(audio["output"]["voice"], str)
    assert isinstance(audio["input"], dict) and audio["input"]
    assert isinstance(audio["input"]["turn_detection"], (dict, type(None)))


async def response_done_schema(dial: Dial) -> None:
    """8. response.done: completed, an assistant message with output_text, usage."""
    async with dial() as ws:
        await text_session(ws)
        _, done = await ask(ws, "Say hi in three words")
    assert isinstance(done["event_id"], str) and done["event_id"]
    response = done["response"]
    assert isinstance(response["id"], str) and response["id"]
    assert response["status"] == "completed"
    assert response["output"], "response.done has no output"
    item = response["output"][0]
    assert item["type"] == "message"
    assert item["role"] == "assistant"
    content = item["content"][0]
    assert content["type"] == "output_text"
    assert isinstance(content["text"], str) and content["text"]
    total = response["usage"]["total_tokens"]
    assert isinstance(total, int) and not isinstance(total, bool) and total > 0


async def text_delta_schema(dial: Dial) -> None:
    """9. response.output_text.delta events carry their ids and indexes."""
    async with dial() as ws:
        await text_session(ws)
        deltas, _ = await ask(ws, "Say hi in three words")
    assert deltas, "no response.output_text.delta arrived"
    for delta in deltas:
        assert isinstance(delta["event_id"], str) and delta["event_id"]
        assert isinstance(delta["delta"], str) and delta["delta"]
        assert isinstance(delta["response_id"], str) and delta["response_id"]
        assert isinstance(delta["item_id"], str) and delta["item_id"]
        assert isinstance(delta["output_index"], int)
        assert isinstance(delta["content_index"], int)


async def unknown_event_gets_an_error(dial: Dial) -> None:
    """10. an unknown client event type → an error event; the session goes on."""
    async with dial() as ws:
        await recv_type(ws, "session.created")
        await send(ws, {"type": "totally.bogus.event", "event_id": "evt_bogus_001"})
        error = await recv(ws)
        assert error["type"] == "error"
        assert error["error"]["code"] == "invalid_value"
        assert error["error"]["event_id"] == "evt_bogus_001"
        await send(ws, {"type": "session.update", "session": TEXT_SESSION})
        assert (await recv(ws))["type"] == "session.updated"


async def missing_model_is_rejected(dial: Dial) -> None:
    """11. no ?model= → the handshake is rejected with a non-101 status."""
    try:
        async with dial(model=None):
            pass
    except InvalidStatus as refused:
        assert refused.response.status_code != 101
    else:
        raise AssertionError("the handshake without a model was accepted")


async def missing_auth_is_rejected(dial: Dial) -> None:
    """12. no Authorization (and no fallback key) → a non-101 status, or an error event."""
    try:
        async with dial(headers={}) as ws:
            try:
                event = await recv(ws)
            except ConnectionClosed as closed:
                raise AssertionError("closed without an error event") from closed
            assert event["type"] == "error"
    except InvalidStatus as refused:
        assert refused.response.status_code != 101


SCENARIOS = {
    # name: (scenario, cassette it needs, whether it plays the whole cassette)
    "connect": (connect_gets_session_created, "session", False),
    "session_update": (session_update_to_text, "session", True),
    "text_round_trip": (text_round_trip, "text_response", True),
    "multi_turn": (multi_turn_remembers, "multi_turn", True),
    "item_added": (item_create_is_added, "conversation_item_added", True),
    "cancel": (cancel_mid_stream, "response_cancel", True),
    "session_schema": (session_created_schema, "session", False),
    "response_done_schema": (response_done_schema, "text_response", True),
    "delta_schema": (text_delta_schema, "text_response", True),
    "unknown_event": (unknown_event_gets_an_error, "invalid_event", True),
    "missing_model": (missing_model_is_rejected, None, True),
    "missing_auth": (missing_auth_is_rejected, None, True),
}
