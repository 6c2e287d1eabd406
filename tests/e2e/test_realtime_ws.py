"""The twelve realtime scenarios, through the proxy, against the fake upstream.

Written as a downstream project writes them: pytest-asyncio tests using the
plugin's ``cassette`` marker and the ``proxy`` fixture from the root conftest.
No API key, no network.
"""

from __future__ import annotations

import pytest

from . import scenarios
from .scenarios import Dial

pytestmark = pytest.mark.asyncio


@pytest.mark.cassette("session", allow_unplayed=True)  # connects, nothing more
async def test_connect_gets_session_created(dial: Dial) -> None:
    await scenarios.connect_gets_session_created(dial)


@pytest.mark.cassette("session")
async def test_session_update_to_text(dial: Dial) -> None:
    await scenarios.session_update_to_text(dial)


@pytest.mark.cassette("text_response")
async def test_text_round_trip(dial: Dial) -> None:
    await scenarios.text_round_trip(dial)


@pytest.mark.cassette("multi_turn")
async def test_multi_turn_conversation(dial: Dial) -> None:
    await scenarios.multi_turn_remembers(dial)


@pytest.mark.cassette("conversation_item_added")
async def test_conversation_item_added(dial: Dial) -> None:
    await scenarios.item_create_is_added(dial)


@pytest.mark.cassette("response_cancel")
async def test_response_cancel_mid_stream(dial: Dial) -> None:
    await scenarios.cancel_mid_stream(dial)


@pytest.mark.cassette("session", allow_unplayed=True)  # connects, nothing more
async def test_session_created_schema(dial: Dial) -> None:
    await scenarios.session_created_schema(dial)


@pytest.mark.cassette("text_response")
async def test_response_done_schema(dial: Dial) -> None:
    await scenarios.response_done_schema(dial)


@pytest.mark.cassette("text_response")
async def test_response_output_text_delta_schema(dial: Dial) -> None:
    await scenarios.text_delta_schema(dial)


@pytest.mark.cassette("invalid_event")
async def test_unknown_event_gets_an_error(dial: Dial) -> None:
    await scenarios.unknown_event_gets_an_error(dial)


async def test_missing_model_is_rejected(dial: Dial) -> None:
    await scenarios.missing_model_is_rejected(dial)


async def test_missing_auth_is_rejected(dial: Dial) -> None:
    await scenarios.missing_auth_is_rejected(dial)
