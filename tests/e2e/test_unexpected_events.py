"""Real clients that do not repeat the recording: the session model and the policies, on sockets."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from fakeupstream import FakeUpstream, bundled_cassette_dir
from fakeupstream.replay import ReplayOptions
from fakeupstream.unexpected import OnUnexpected

from ..helpers import TIMEOUT, recv_event, recv_until_closed, send_event, start_serve, ws_connect
from . import scenarios
from .scenarios import Dial

pytestmark = pytest.mark.asyncio
CASSETTES = bundled_cassette_dir()

SESSION_UPDATE = {
    "type": "session.update",
    "session": {"type": "realtime", "output_modalities": ["text"]},
}
USER_TEXT = {
    "type": "conversation.item.create",
    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
}


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as server:
        yield server


async def test_session_update_first_then_an_item_is_emulated_then_replayed(
    fake: FakeUpstream,
) -> None:
    url = f"{fake.url}/cassettes/conversation_item_added/v1/realtime?model=gpt-realtime"
    async with ws_connect(url) as ws:
        assert (await recv_event(ws))["type"] == "session.created"
        await send_event(ws, SESSION_UPDATE)
        updated = await recv_event(ws)
        assert updated["type"] == "session.updated"
        assert updated["session"]["output_modalities"] == ["text"]
        await send_event(ws, USER_TEXT)
        assert (await recv_event(ws))["type"] == "conversation.item.added"
        assert (await recv_event(ws))["type"] == "conversation.item.done"
    await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
    [report] = fake.reports()
    assert len(report.emulated) == 1
    assert report.mismatches == [] and report.unplayed == []


async def test_an_unanswerable_event_still_gets_an_error_frame(fake: FakeUpstream) -> None:
    url = f"{fake.url}/cassettes/conversation_item_added/v1/realtime?model=gpt-realtime"
    async with ws_connect(url) as ws:
        await recv_event(ws)
        await send_event(ws, {"type": "response.create"})
        error = await recv_event(ws)
    assert error["error"]["code"] == "unexpected_client_event"
    await asyncio.wait_for(fake.wait_idle(), TIMEOUT)
    [report] = fake.reports()
    assert len(report.mismatches) == 1


async def test_a_cassette_can_choose_its_policy(tmp_path: Path) -> None:
    text = (CASSETTES / "conversation_item_added.yaml").read_text()
    strict = text.replace("match: type", "on_unexpected: close\nmatch: type")
    (tmp_path / "strict.yaml").write_text(strict)
    async with FakeUpstream(tmp_path) as fake:
        async with ws_connect(f"{fake.url}/cassettes/strict/v1/realtime?model=m") as ws:
            await recv_event(ws)
            await send_event(ws, SESSION_UPDATE)
            events, code, _ = await recv_until_closed(ws)
        assert [e["error"]["code"] for e in events] == ["unexpected_client_event"]
        assert code == 1008
    async with (
        FakeUpstream(tmp_path, replay=ReplayOptions(on_unexpected=OnUnexpected.EMULATE)) as fake,
        ws_connect(f"{fake.url}/cassettes/strict/v1/realtime?model=m") as ws,
    ):
        await recv_event(ws)
        await send_event(ws, SESSION_UPDATE)
        assert (await recv_event(ws))["type"] == "session.updated"


async def test_serve_on_unexpected_close_closes_1008_as_a_process() -> None:
    process, url = await start_serve(
        "--cassette", "conversation_item_added", "--on-unexpected", "close"
    )
    try:
        async with ws_connect(f"{url}/v1/realtime?model=gpt-realtime") as ws:
            await recv_event(ws)
            await send_event(ws, SESSION_UPDATE)
            events, code, reason = await recv_until_closed(ws)
        assert [e["error"]["code"] for e in events] == ["unexpected_client_event"]
        assert code == 1008
        assert reason.startswith("unexpected client event 'session.update' at step 1 (line ")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
        assert process.stderr is not None
        assert b"Traceback" not in await process.stderr.read()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.cassette("conversation_item_added")
async def test_the_gateway_flow_that_configures_text_first_passes_through_the_proxy(
    dial: Dial,
) -> None:
    # The public gateway suite's item scenario as it really runs: session.update first.
    async with dial() as ws:
        await scenarios.text_session(ws)  # session.created, session.update, session.updated
        await scenarios.send(ws, scenarios.user_message("Hello there"))
        added = await scenarios.recv_type(ws, "conversation.item.added")
        assert added["item"]["role"] == "user"
        await scenarios.recv_type(ws, "conversation.item.done")
