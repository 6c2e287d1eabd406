"""The official ``openai`` SDK's GA realtime client against the fake, straight and via the proxy."""

from __future__ import annotations

from typing import Any

import pytest
from openai import AsyncOpenAI

from fakeupstream.serve.threaded import ThreadedFakeUpstream
from proxy import Gateway

from .sdk_turn import text_turn

pytestmark = [pytest.mark.asyncio, pytest.mark.cassette("text_response")]


async def text_round_trip(base_url: str) -> str:
    client = AsyncOpenAI(api_key="sk-test-sdk", base_url=base_url, max_retries=0)
    events: list[Any] = []
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await text_turn(conn, events)
    await client.close()
    assert [event.type for event in events[:2]] == ["session.created", "session.updated"]
    assert all(event.type != "error" for event in events), events
    assert events[-1].type == "response.done" and events[-1].response.status == "completed"
    return "".join(event.delta for event in events if event.type == "response.output_text.delta")


async def test_sdk_text_round_trip_against_the_fake(fakeupstream: ThreadedFakeUpstream) -> None:
    assert await text_round_trip(f"{fakeupstream.http_url}/v1") == "Hi there, friend!"


async def test_sdk_text_round_trip_through_the_proxy(gateway: Gateway) -> None:
    base = gateway.url.replace("ws://", "http://", 1)
    assert await text_round_trip(f"{base}/v1") == "Hi there, friend!"
