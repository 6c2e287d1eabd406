"""The official ``openai`` SDK's GA realtime client against the fake, straight and via the proxy."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI

from fakeupstream.serve.threaded import ThreadedFakeUpstream
from proxy import Gateway

pytestmark = [pytest.mark.asyncio, pytest.mark.cassette("text_response")]


async def text_round_trip(base_url: str) -> str:
    client = AsyncOpenAI(api_key="sk-test-sdk", base_url=base_url, max_retries=0)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        updated = await conn.recv()
        assert updated.type == "session.updated"
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Say hi in three words"}],
            }
        )
        await conn.response.create(response={"output_modalities": ["text"]})
        text = ""
        async for event in conn:
            assert event.type != "error", event
            if event.type == "response.output_text.delta":
                text += event.delta
            elif event.type == "response.done":
                assert event.response.status == "completed"
                break
    await client.close()
    return text


async def test_sdk_text_round_trip_against_the_fake(fakeupstream: ThreadedFakeUpstream) -> None:
    assert await text_round_trip(f"{fakeupstream.http_url}/v1") == "Hi there, friend!"


async def test_sdk_text_round_trip_through_the_proxy(gateway: Gateway) -> None:
    base = gateway.url.replace("ws://", "http://", 1)
    assert await text_round_trip(f"{base}/v1") == "Hi there, friend!"
