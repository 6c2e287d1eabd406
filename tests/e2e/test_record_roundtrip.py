"""Record the twelve scenarios, then replay what was recorded: the recorder's round trip.

A second fake upstream, replaying the bundled cassettes, stands in for the real
API. Each scenario runs through proxy → recorder → stand-in and is recorded into
a cassette of its own; then the same scenarios run through the proxy against a
fake that replays only those recordings. The recorded server frames must be the
originals, in order and content (ids, expiry times and timing aside).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fakeupstream import FakeUpstream
from fakeupstream.cassette import Direction, FrameStep
from fakeupstream.recordmode import RecordMode
from fakeupstream.serve.record_relay import RecordingConfig
from fakeupstream.storage.library import CassetteLibrary

from ..helpers import stable
from . import scenarios
from .scenarios import dialer

pytestmark = pytest.mark.asyncio

KEY = "sk-roundtrip0123456789abcdefgh"


def server_events(frames: list[FrameStep]) -> list[Any]:
    return [stable(step.data) for step in frames if step.direction is Direction.SERVER]


async def run_all(proxy, upstream_for) -> None:  # type: ignore[no-untyped-def]
    for name, (scenario, _, _) in scenarios.SCENARIOS.items():
        gateway = await proxy(upstream_for(name))
        await scenario(
            dialer(
                lambda model, gw=gateway: (
                    gw.url + "/v1/realtime" + ("" if model is None else f"?model={model}")
                )
            )
        )


async def test_the_twelve_scenarios_record_and_replay(proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundled = CassetteLibrary()
    async with FakeUpstream() as stand_in:
        config = RecordingConfig(
            mode=RecordMode.ALL, api_key=KEY, upstream=f"{stand_in.url}/v1/realtime"
        )
        async with FakeUpstream(tmp_path, recording=config) as recorder:

            def upstream_for(name: str) -> str:
                cassette = scenarios.SCENARIOS[name][1]
                if cassette is not None:
                    stand_in.use(cassette)
                return recorder.cassette_url(name)

            await run_all(proxy, upstream_for)
            assert not recorder.errors
        assert all(not r.mismatches for r in stand_in.reports())

    recorded = CassetteLibrary(tmp_path)
    upstream_scenarios = {n for n, (_, cassette, _) in scenarios.SCENARIOS.items() if cassette}
    assert set(recorded.names()) == upstream_scenarios
    for name in sorted(upstream_scenarios):
        _, source, whole = scenarios.SCENARIOS[name]
        assert source is not None
        original = server_events(bundled.load(source).server_frames())
        copy = server_events(recorded.load(name).server_frames())
        if whole:
            assert copy == original, name
        else:  # the scenario hung up early: the recording is the start of the original
            assert copy == original[: len(copy)], name
            assert copy, name
        text = (tmp_path / f"{name}.yaml").read_text()
        assert KEY not in text
        assert "sk-test-e2e" not in text  # the client's own key is not kept either
        # Each frame is one line of JSON (which the loader reads without YAML).
        frames = [line for line in text.splitlines() if line.startswith(("- server", "- client"))]
        assert frames, name
        for line in frames:
            json.loads(line.split(": ", 1)[1])

    async with FakeUpstream(tmp_path) as replay:
        await run_all(proxy, replay.cassette_url)
        assert replay.reports()
        for report in replay.reports():
            assert report.mismatches == [], report.failures()
            assert report.unplayed == [], report.failures()
