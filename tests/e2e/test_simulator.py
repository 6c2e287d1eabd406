"""`fakeupstream serve --cassette simulated`: a GA fake for clients with nothing recorded.

Driven by the official SDK over a real socket, with the server run as a process.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from openai import AsyncOpenAI

from ..helpers import TIMEOUT, start_serve

pytestmark = pytest.mark.asyncio

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather at a place.",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
}


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[str]:
    """``fakeupstream serve --cassette simulated`` as a process; yields its http base URL."""
    process, url = await start_serve("--cassette", "simulated")
    try:
        yield url.replace("ws://", "http://", 1)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
        assert process.stderr is not None
        assert b"Traceback" not in await process.stderr.read()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def until_done(conn: Any) -> list[Any]:
    events = []
    async for event in conn:
        assert event.type != "error", event
        events.append(event)
        if event.type == "response.done":
            return events
    raise AssertionError("the connection ended before response.done")


async def user_says(conn: Any, text: str) -> None:
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )


async def test_the_sdk_text_round_trip(simulator: str) -> None:
    client = AsyncOpenAI(api_key="sk-test-sdk", base_url=f"{simulator}/v1", max_retries=0)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        assert (await conn.recv()).type == "session.updated"
        await user_says(conn, "Say hi in three words")
        await conn.response.create()
        events = await until_done(conn)
    await client.close()
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "You said: Say hi in three words"
    assert events[-1].response.status == "completed"


async def test_the_sdk_function_call_round_trip(simulator: str) -> None:
    client = AsyncOpenAI(api_key="sk-test-sdk", base_url=f"{simulator}/v1", max_retries=0)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.session.update(
            session={"type": "realtime", "output_modalities": ["text"], "tools": [WEATHER_TOOL]}
        )
        assert (await conn.recv()).type == "session.updated"
        await user_says(conn, "Weather in Paris?")
        await conn.response.create()
        events = await until_done(conn)
        [call] = [e for e in events if e.type == "response.function_call_arguments.done"]
        assert (call.name, call.arguments) == ("get_weather", "{}")
        await conn.conversation.item.create(
            item={
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": json.dumps({"sky": "fog"}),
            }
        )
        await conn.response.create()
        events = await until_done(conn)
    await client.close()
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "You said: Weather in Paris?"


async def test_an_audio_session_gets_audio_with_its_transcript(simulator: str) -> None:
    client = AsyncOpenAI(api_key="sk-test-sdk", base_url=f"{simulator}/v1", max_retries=0)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await user_says(conn, "Hello")
        await conn.response.create()
        events = await until_done(conn)
    await client.close()
    [done] = [e for e in events if e.type == "response.output_audio_transcript.done"]
    assert done.transcript == "You said: Hello"
    assert any(e.type == "response.output_audio.delta" for e in events)
