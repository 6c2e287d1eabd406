"""Record a backend minting a client secret and an app connecting with it; replay both.

The official ``openai`` SDK talks to a recorder, which forwards to a second fake
standing in for the real API (``text_response``). The backend mints an ephemeral key
(``client.realtime.client_secrets.create``), the app opens a realtime connection with
that key and has a text round trip; the recorder saves both into one cassette. A
plain fake then replays that cassette to the same SDK code: the same events arrive,
the key is a fresh one with a plausible expiry, and the saved file holds no key.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from fakeupstream import FakeUpstream, RecordingConfig, RecordMode, load_cassette

from ..helpers import stable
from .sdk_turn import text_turn

pytestmark = pytest.mark.asyncio

KEY = "sk-SENTINEL0123456789abcdefXYZ"  # the recorder's "real" key
BACKEND_KEY = "sk-BACKENDSENTINEL9876543210zyx"  # what the backend authenticates with
SESSION = {"type": "realtime", "model": "gpt-realtime", "instructions": "Talk like a pirate."}


async def mint_then_talk(base_url: str) -> tuple[Any, list[dict[str, Any]]]:
    """The backend mints a key; the app connects with it and asks for a text reply."""
    backend = AsyncOpenAI(api_key=BACKEND_KEY, base_url=base_url, max_retries=0)
    secret = await backend.realtime.client_secrets.create(session=SESSION)
    await backend.close()
    app = AsyncOpenAI(api_key=secret.value, base_url=base_url, max_retries=0)
    events: list[Any] = []
    async with app.realtime.connect(model="gpt-realtime") as conn:
        await text_turn(conn, events)
    await app.close()
    return secret, [event.to_dict() for event in events]


def assert_minted_now(secret: Any, started: float) -> None:
    assert re.fullmatch(r"ek_[0-9a-f]{32}", secret.value)
    assert started + 590 <= secret.expires_at <= time.time() + 610  # the default 600 s
    assert secret.session.instructions == SESSION["instructions"]


async def test_a_minted_key_and_its_session_record_and_replay(tmp_path: Path) -> None:
    started = time.time()
    async with FakeUpstream(cassette="text_response") as stand_in:
        config = RecordingConfig(
            mode=RecordMode.ONCE, api_key=KEY, upstream=f"{stand_in.url}/v1/realtime"
        )
        async with FakeUpstream(tmp_path, cassette="minted", recording=config) as recorder:
            live_secret, live = await mint_then_talk(f"{recorder.http_url}/v1")
        assert recorder.errors == []
    assert_minted_now(live_secret, started)
    assert live[0]["session"]["instructions"] == SESSION["instructions"]
    assert live[-1]["type"] == "response.done"

    saved = (tmp_path / "minted.yaml").read_text()
    assert KEY not in saved and BACKEND_KEY not in saved and "sk-" not in saved
    assert live_secret.value not in saved
    assert re.findall(r"ek_\w+", saved) == ["ek_REDACTED"]
    assert saved.index("http:") < saved.index("timeline:")  # minted before it was used
    cassette = load_cassette(tmp_path / "minted.yaml")
    assert [(x.method, x.path, x.status) for x in cassette.http] == [
        ("POST", "/v1/realtime/client_secrets", 200)
    ]

    started = time.time()
    async with FakeUpstream(tmp_path, cassette="minted") as replay:
        secret, replayed = await mint_then_talk(f"{replay.http_url}/v1")
        assert [report.failures() for report in replay.reports()] == [[]]
    assert_minted_now(secret, started)
    assert secret.value != live_secret.value
    assert replayed[0]["session"]["instructions"] == SESSION["instructions"]
    assert stable(replayed) == stable(live)
