"""Audio in and audio out through the proxy, with the client's own chunking."""

from __future__ import annotations

import base64

import pytest

from .scenarios import Dial, recv, recv_type, send

pytestmark = pytest.mark.asyncio

# 100 ms of 24 kHz 16-bit mono silence, the shortest commit the GA API accepts.
SILENCE = base64.b64encode(bytes(4800)).decode()


@pytest.mark.parametrize("chunks", [1, 5])
@pytest.mark.cassette("audio_roundtrip")
async def test_audio_round_trip_with_any_chunking(dial: Dial, chunks: int) -> None:
    async with dial() as ws:
        await recv_type(ws, "session.created")
        await send(
            ws,
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "output_modalities": ["audio"],
                    "audio": {
                        "input": {
                            "turn_detection": None,
                            "transcription": {"model": "gpt-4o-mini-transcribe"},
                        }
                    },
                },
            },
        )
        await recv_type(ws, "session.updated")
        for _ in range(chunks):
            await send(ws, {"type": "input_audio_buffer.append", "audio": SILENCE})
        await send(ws, {"type": "input_audio_buffer.commit"})
        await recv_type(ws, "input_audio_buffer.committed")
        transcript = await recv_type(ws, "conversation.item.input_audio_transcription.completed")
        assert transcript["transcript"]
        await send(ws, {"type": "response.create"})
        audio = b""
        while True:
            event = await recv(ws)
            assert event["type"] != "error", event
            if event["type"] == "response.output_audio.delta":
                audio += base64.b64decode(event["delta"])
            if event["type"] == "response.done":
                break
        assert audio
        assert event["response"]["output"][0]["content"][0]["type"] == "output_audio"
        await recv_type(ws, "rate_limits.updated")
