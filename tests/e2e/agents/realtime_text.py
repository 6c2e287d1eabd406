"""A text round trip with openai-agents' realtime runner: the recipe in docs/clients.md.

Run by tests/e2e/test_openai_agents.py in a virtual environment of its own (openai-agents
pins its own websockets). Usage: python realtime_text.py WS_URL
Prints one JSON line, {"text": ..., "status": ...}.
"""

from __future__ import annotations

import asyncio
import json
import sys

from agents.realtime import RealtimeAgent, RealtimeRunner


async def main(url: str) -> None:
    agent = RealtimeAgent(name="Assistant", instructions="Be brief.")
    runner = RealtimeRunner(
        agent,
        config={"model_settings": {"model_name": "gpt-realtime", "output_modalities": ["text"]}},
    )
    # The fake's URL goes in model_config; any key will do.
    session = await runner.run(model_config={"url": url, "api_key": "sk-test-agents"})
    text, updated = "", 0
    async with session:
        async for event in session:
            if event.type == "error":
                raise SystemExit(f"realtime error: {event.error}")
            if event.type != "raw_model_event" or event.data.type != "raw_server_event":
                continue
            raw = event.data.data
            if raw["type"] == "session.updated":
                # The runner's own update, then its tracing update: both answered.
                updated += 1
                if updated == 2:
                    await session.send_message("Say hi in three words")
            elif raw["type"] == "response.output_text.delta":
                text += raw["delta"]
            elif raw["type"] == "response.done":
                print(json.dumps({"text": text, "status": raw["response"]["status"]}), flush=True)
                break


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 20))
