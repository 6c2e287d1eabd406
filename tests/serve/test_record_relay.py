"""The recording relay over real sockets: a second fake server stands in for the real API.

Every test records through a ``FakeUpstream`` with a ``RecordingConfig`` into a
temporary directory, from a stand-in ``FakeUpstream`` replaying a bundled (or
hand-made) cassette, with a sentinel in ``OPENAI_API_KEY``. Nothing leaves
127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fakeupstream import (
    CloseStep,
    Direction,
    FakeUpstream,
    FrameStep,
    RecordError,
    RecordingConfig,
    RecordMode,
    SecretLeakError,
    load_cassette,
)
from fakeupstream.record_session import FrameData
from fakeupstream.serve.record_relay import upstream_headers, upstream_subprotocols, upstream_url
from fakeupstream.storage.file_writer import SavedCassette
from fakeupstream.upgrade import UpgradeRequest

from ..helpers import (
    TIMEOUT,
    http,
    recv_event,
    recv_until_closed,
    send_event,
    stable,
    ws_connect,
)

KEY = "sk-SENTINEL0123456789abcdefXYZ"  # the "real" key
CLIENT_KEY = "sk-CLIENTSENTINEL9876543210zyx"  # what the client authenticates with
MODEL = "?model=gpt-realtime"

TEXT_TURN: list[dict[str, Any]] = [
    {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}},
    {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Say hi in three words"}],
        },
    },
    {"type": "response.create", "response": {"output_modalities": ["text"]}},
]


@pytest.fixture(autouse=True)
def real_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[FakeUpstream]:
    """The "real API": the bundled cassettes, replayed."""
    async with FakeUpstream() as server:
        yield server


def config(upstream: str, mode: RecordMode = RecordMode.ONCE, **options: Any) -> RecordingConfig:
    return RecordingConfig.from_env(mode, upstream=upstream, **options)


def url(server: FakeUpstream, cassette: str, query: str = MODEL) -> str:
    return f"{server.url}/cassettes/{cassette}/v1/realtime{query}"


async def idle(*servers: FakeUpstream) -> None:
    async with asyncio.timeout(TIMEOUT):
        for server in servers:
            await server.wait_idle()


async def text_turn(target: str, **options: Any) -> list[dict[str, Any]]:
    """Play the text_response conversation; return every server event."""
    options.setdefault("headers", {"Authorization": f"Bearer {CLIENT_KEY}"})
    async with ws_connect(target, options.pop("headers"), **options) as ws:
        events = [await recv_event(ws)]
        await send_event(ws, TEXT_TURN[0])
        events.append(await recv_event(ws))
        await send_event(ws, TEXT_TURN[1])
        await send_event(ws, TEXT_TURN[2])
        while events[-1]["type"] != "rate_limits.updated":
            events.append(await recv_event(ws))
    return events


def listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def steps(path: Path) -> list[tuple[str, str | None]]:
    """``(direction, event type)`` of every frame of a cassette's first episode."""
    timeline = load_cassette(path).timeline
    return [(s.direction.value, s.event_type) for s in timeline if isinstance(s, FrameStep)]


FAKE_KEY = "sk-FAKEfakeFAKEfake0123456789"


def leak(direction: Direction, data: FrameData) -> FrameData | None:
    """A ``before_record`` hook that puts a key in a recorded event: the guard refuses."""
    if isinstance(data, dict) and data.get("type") == "session.updated":
        return {**data, "note": f"a transcript quoting {FAKE_KEY} mid-sentence"}
    return data


def every_file(directory: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in directory.rglob("*") if path.is_file()}


# -- the relay, pure parts -----------------------------------------------------------------


def test_what_goes_upstream() -> None:
    request = UpgradeRequest.from_target(
        f"/v1/realtime?model=m&api_key={CLIENT_KEY}&x=1",
        [
            ("Host", "127.0.0.1:1"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "k"),
            ("Sec-WebSocket-Version", "13"),
            ("AUTHORIZATION", f"Bearer {CLIENT_KEY}"),
            ("api-key", CLIENT_KEY),
            ("Cookie", "a=b"),
            ("OpenAI-Beta", "realtime=v1"),
            ("User-Agent", "gateway/1"),
        ],
        ["realtime", f"openai-insecure-api-key.{CLIENT_KEY}"],
    )
    assert upstream_url("wss://api.openai.com/v1/realtime", request.query) == (
        "wss://api.openai.com/v1/realtime?model=m&x=1"
    )
    assert upstream_url("http://127.0.0.1:9/cassettes/s", [("model", "m")]) == (
        "ws://127.0.0.1:9/cassettes/s/v1/realtime?model=m"
    )
    assert upstream_headers(request, KEY) == [
        ("Authorization", f"Bearer {KEY}"),
        ("OpenAI-Beta", "realtime=v1"),
        ("User-Agent", "gateway/1"),
    ]
    assert upstream_subprotocols(request) == ["realtime"]


def test_config_needs_a_key_and_hides_it() -> None:
    with pytest.raises(RecordError, match=r"OPENAI_API_KEY is not set.*export OPENAI_API_KEY="):
        RecordingConfig.from_env(RecordMode.ONCE, environ={})
    with pytest.raises(RecordError, match="expected a ws://"):
        RecordingConfig(RecordMode.ONCE, api_key=KEY, upstream="ftp://x")
    assert KEY not in repr(RecordingConfig(RecordMode.ONCE, api_key=KEY, secrets=(CLIENT_KEY,)))


# -- recording -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_recorded_session_replays_the_same_server_frames(
    tmp_path: Path, standin: FakeUpstream
) -> None:
    saved: list[SavedCassette] = []
    recording = config(standin.cassette_url("text_response"), on_saved=saved.append)
    async with FakeUpstream(tmp_path, recording=recording) as recorder:
        live = await text_turn(url(recorder, "hello"))
        await idle(recorder, standin)
        assert recorder.errors == []
        [report] = recorder.reports()
        assert (report.outcome, report.cassette) == ("recorded", "hello")
    [result] = saved
    assert (result.path, result.connections) == (tmp_path / "hello.yaml", 1)
    assert result.frames == len(live) + len(TEXT_TURN)
    assert standin.reports()[0].failures() == []  # the recorder relayed every client frame

    cassette = load_cassette(tmp_path / "hello.yaml")
    assert cassette.recorded.model == "gpt-realtime"
    assert (
        cassette.recorded.upstream
        == standin.cassette_url("text_response").replace("http", "ws") + "/v1/realtime"
    )
    assert cassette.recorded.at is not None
    assert cassette.handshake.expect.query == (("model", "gpt-realtime"),)
    assert steps(tmp_path / "hello.yaml")[:3] == [
        ("server", "session.created"),
        ("client", "session.update"),
        ("server", "session.updated"),
    ]
    assert not any(isinstance(step, CloseStep) for step in cassette.timeline)  # client closed

    async with FakeUpstream(tmp_path) as replay:
        replayed = await text_turn(url(replay, "hello"))
        await idle(replay)
        assert replay.reports()[0].failures() == []
    assert stable(replayed) == stable(live)


@pytest.mark.asyncio
async def test_an_upstream_refusal_is_passed_on_and_recorded(tmp_path: Path) -> None:
    upstream_dir = tmp_path / "upstream"
    upstream_dir.mkdir()
    (upstream_dir / "busy.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        handshake:
          rules:
            - refuse:
                status: 429
                headers: {Retry-After: "7"}
                body: {error: {type: rate_limit_exceeded, message: slow down}}
        timeline: []
        """)
    )
    recorded = tmp_path / "recorded"
    async with (
        FakeUpstream(upstream_dir) as standin,
        FakeUpstream(recorded, recording=config(standin.cassette_url("busy"))) as recorder,
    ):
        with pytest.raises(InvalidStatus) as caught:
            async with ws_connect(url(recorder, "busy")):
                pass  # pragma: no cover - refused
        await idle(recorder)
        assert recorder.errors == []
    response = caught.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    body = {"error": {"type": "rate_limit_exceeded", "message": "slow down"}}
    assert json.loads(response.body) == body

    cassette = load_cassette(recorded / "busy.yaml")
    [rule] = cassette.handshake.rules
    assert rule.when == type(rule.when)()  # always holds
    assert rule.refuse is not None
    assert (rule.refuse.status, rule.refuse.body) == (429, body)
    async with FakeUpstream(recorded) as replay:
        with pytest.raises(InvalidStatus) as again:
            async with ws_connect(url(replay, "busy")):
                pass  # pragma: no cover - refused
    assert again.value.response.status_code == 429
    assert json.loads(again.value.response.body) == body


@pytest.mark.asyncio
async def test_a_gateway_sending_openai_beta_is_recorded_being_rejected(
    tmp_path: Path, standin: FakeUpstream
) -> None:
    headers = {"Authorization": f"Bearer {CLIENT_KEY}", "OpenAI-Beta": "realtime=v1"}
    recording = config(standin.cassette_url("beta_header_rejected"))
    async with FakeUpstream(tmp_path, recording=recording) as recorder:
        async with ws_connect(url(recorder, "beta"), headers) as ws:
            events, code, reason = await recv_until_closed(ws)
        await idle(recorder)
    assert [e["error"]["code"] for e in events] == ["beta_api_shape_disabled"]
    assert (code, reason) == (4000, "invalid_request_error.beta_api_shape_disabled")
    cassette = load_cassette(tmp_path / "beta.yaml")
    close = cassette.timeline[-1]
    assert isinstance(close, CloseStep)
    assert (close.code, close.reason) == (4000, "invalid_request_error.beta_api_shape_disabled")
    async with FakeUpstream(tmp_path) as replay, ws_connect(url(replay, "beta")) as ws:
        replayed, code, _ = await recv_until_closed(ws)
    assert stable(replayed) == stable(events)
    assert code == 4000


@pytest.mark.asyncio
async def test_no_secret_reaches_any_file_or_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fakeupstream")
    # The stand-in echoes the real key and mints an ephemeral secret; the client sends its
    # own key as a header, a query parameter, a subprotocol, and inside a message.
    upstream_dir = tmp_path / "upstream"
    upstream_dir.mkdir()
    (upstream_dir / "echo.yaml").write_text(
        textwrap.dedent(f"""\
        version: 1
        timeline:
          - server:
              type: session.created
              session: {{instructions: "you run on {KEY}",
                         client_secret: {{value: ek_68af3c0f27a481908f6c3e7a2a9d, expires_at: 9}}}}
          - client: {{type: conversation.item.create}}
          - server: {{type: conversation.item.added, token: ek_0123456789abcdefABCDEF}}
        """)
    )
    recorded = tmp_path / "recorded"
    async with (
        FakeUpstream(upstream_dir) as standin,
        FakeUpstream(recorded, recording=config(standin.cassette_url("echo"))) as recorder,
    ):
        async with ws_connect(
            url(recorder, "secrets", f"{MODEL}&api_key={CLIENT_KEY}"),
            {"Authorization": f"Bearer {CLIENT_KEY}", "X-Api-Key": CLIENT_KEY},
            subprotocols=["realtime", f"openai-insecure-api-key.{CLIENT_KEY}"],
        ) as ws:
            created = await recv_event(ws)
            await send_event(
                ws,
                {
                    "type": "conversation.item.create",
                    "item": {"content": [{"type": "input_text", "text": f"key {CLIENT_KEY}!"}]},
                },
            )
            added = await recv_event(ws)
        await idle(recorder, standin)
        assert recorder.errors == []
    # The client saw the upstream as it is: the recorder only redacts what it stores.
    assert KEY in created["session"]["instructions"]
    assert added["token"].startswith("ek_0123")
    files = every_file(recorded)
    assert recorded / "secrets.yaml" in files
    for secret in (KEY, CLIENT_KEY, "ek_68af3c0f27a4", "ek_0123456789abc", "SENTINEL"):
        for path, data in files.items():
            assert secret.encode() not in data, (secret, path)
    assert "> Authorization: REDACTED" in caplog.text  # the upstream request, masked
    for secret in (KEY, CLIENT_KEY):
        assert secret not in caplog.text
    text = (recorded / "secrets.yaml").read_text()
    assert "you run on REDACTED" in text
    assert "key REDACTED!" in text
    assert text.count("ek_REDACTED") == 2


@pytest.mark.asyncio
async def test_the_leak_guard_refuses_and_nothing_is_written(
    tmp_path: Path, standin: FakeUpstream
) -> None:
    refused: list[RecordError] = []
    recording = config(
        standin.cassette_url("session"), before_record=(leak,), on_error=refused.append
    )
    async with FakeUpstream(tmp_path, recording=recording) as recorder:
        async with ws_connect(url(recorder, "leaky")) as ws:
            await recv_event(ws)
            await send_event(ws, TEXT_TURN[0])
            await recv_event(ws)
        await idle(recorder)
        [error] = recorder.errors
        [report] = recorder.reports()
    assert isinstance(error, SecretLeakError)
    assert refused == [error]
    assert report.outcome == "not recorded"
    message = str(error)
    assert message.startswith(f"refused to write {tmp_path / 'leaky.yaml'}: it would contain")
    assert "an OpenAI API key (sk-FA…)" in message
    assert FAKE_KEY not in message
    assert not (tmp_path / "leaky.yaml").exists()
    assert listing(tmp_path) == []  # nothing written, no lock left


@pytest.mark.asyncio
async def test_a_failed_recording_is_reported_without_the_cassette_directory(
    tmp_path: Path, standin: FakeUpstream
) -> None:
    recording = config(standin.cassette_url("session"), before_record=(leak,))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "taken.yaml").mkdir()  # a directory where the file should go
    async with FakeUpstream(tmp_path, recording=recording) as recorder:
        for name in ("leaky", "sub/taken"):
            async with ws_connect(url(recorder, name)) as ws:
                await recv_event(ws)
                await send_event(ws, TEXT_TURN[0])
                await recv_event(ws)
            await idle(recorder)
        status, body = await http(recorder.http_url, "GET", "/__fakeupstream/report")
        local = [str(error) for error in recorder.errors]  # for the test's own failure
    assert status == 200
    reasons = [c["protocol_errors"] for c in body["connections"]]
    assert reasons[0][0].startswith("not recorded: refused to write leaky.yaml: it would")
    assert reasons[1][0].startswith("not recorded: cannot append to sub/taken.yaml: it is not")
    assert str(tmp_path) not in json.dumps(body)
    assert local[0].startswith(f"refused to write {tmp_path / 'leaky.yaml'}")  # full path


@pytest.mark.asyncio
async def test_a_client_killed_mid_session_leaves_a_complete_cassette(
    tmp_path: Path, standin: FakeUpstream
) -> None:
    async with FakeUpstream(
        tmp_path, recording=config(standin.cassette_url("text_response"))
    ) as recorder:
        ws = await ws_connect(url(recorder, "killed"))
        await recv_event(ws)
        await send_event(ws, TEXT_TURN[0])
        await recv_event(ws)
        await send_event(ws, TEXT_TURN[1])
        ws.transport.abort()  # no close frame, no FIN handshake: the client just dies
        await idle(recorder, standin)
        assert recorder.errors == []
        [report] = recorder.reports()
        assert report.outcome == "recorded"
    cassette = load_cassette(tmp_path / "killed.yaml")
    assert steps(tmp_path / "killed.yaml")[:4] == [
        ("server", "session.created"),
        ("client", "session.update"),
        ("server", "session.updated"),
        ("client", "conversation.item.create"),
    ]
    assert not any(isinstance(step, CloseStep) for step in cassette.timeline)
    assert listing(tmp_path) == ["killed.yaml"]  # no temporary file, no lock left


@pytest.mark.asyncio
async def test_an_upstream_that_goes_away_is_recorded_with_its_close(tmp_path: Path) -> None:
    async with FakeUpstream() as standin:
        recorder = FakeUpstream(tmp_path, recording=config(standin.cassette_url("session")))
        async with recorder:
            async with ws_connect(url(recorder, "gone")) as ws:
                await recv_event(ws)
                await standin.stop()  # the upstream shuts down mid-session (close 1001)
                _, code, _ = await recv_until_closed(ws)
            await idle(recorder)
    assert code == 1001
    cassette = load_cassette(tmp_path / "gone.yaml")
    assert isinstance(cassette.timeline[0], FrameStep)
    close = cassette.timeline[-1]
    assert isinstance(close, CloseStep)
    assert close.code == 1001


@pytest.mark.asyncio
async def test_an_unreachable_upstream_is_a_502_and_nothing_is_written(tmp_path: Path) -> None:
    async with FakeUpstream() as gone:
        dead = gone.http_url  # a port that was just released: connection refused
    async with FakeUpstream(tmp_path, recording=config(dead)) as recorder:
        with pytest.raises(InvalidStatus) as caught:
            async with ws_connect(url(recorder, "nowhere")):
                pass  # pragma: no cover - refused
        await idle(recorder)
        assert recorder.errors == []
    assert caught.value.response.status_code == 502
    assert json.loads(caught.value.response.body)["error"]["code"] == "upstream_unreachable"
    assert listing(tmp_path) == []


@pytest.mark.asyncio
async def test_a_stopped_recorder_saves_the_open_sessions(
    tmp_path: Path, standin: FakeUpstream
) -> None:
    recorder = FakeUpstream(tmp_path, recording=config(standin.cassette_url("session")))
    async with recorder, ws_connect(url(recorder, "stopped")) as ws:
        await recv_event(ws)
        await recorder.stop()  # SIGTERM in the CLI: every session is closed and saved
        with pytest.raises(ConnectionClosed) as caught:
            await recv_event(ws)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001
    cassette = load_cassette(tmp_path / "stopped.yaml")
    assert [s.event_type for s in cassette.timeline if isinstance(s, FrameStep)] == [
        "session.created"
    ]


# -- record modes --------------------------------------------------------------------------


async def session_exchange(target: str, marker: str = "") -> None:
    """The `session` cassette's conversation, tagged so episodes can be told apart."""
    async with ws_connect(target) as ws:
        await recv_event(ws)
        await send_event(
            ws, {"type": "session.update", "session": {"type": "realtime", "instructions": marker}}
        )
        await recv_event(ws)


def markers(path: Path) -> list[str]:
    """Each episode's tag, checking that every episode is one whole, uninterrupted exchange."""
    tags = []
    for episode in load_cassette(path).episodes:
        steps = [s for s in episode.timeline if isinstance(s, FrameStep)]
        assert [(s.direction.value, s.event_type) for s in steps] == [
            ("server", "session.created"),
            ("client", "session.update"),
            ("server", "session.updated"),
        ]
        assert isinstance(steps[1].data, dict)
        tags.append(steps[1].data["session"]["instructions"])
    return tags


@pytest.mark.asyncio
async def test_mode_none_only_replays(tmp_path: Path, standin: FakeUpstream) -> None:
    recording = config(standin.cassette_url("session"), RecordMode.NONE)
    async with FakeUpstream(tmp_path, recording=recording) as recorder:
        with pytest.raises(InvalidStatus) as caught:
            async with ws_connect(url(recorder, "missing")):
                pass  # pragma: no cover - refused
    assert caught.value.response.status_code == 404
    assert standin.reports() == []


@pytest.mark.asyncio
async def test_mode_once_records_a_missing_cassette_and_replays_an_existing_one(
    tmp_path: Path, standin: FakeUpstream
) -> None:
    (tmp_path / "existing.yaml").write_text(
        "version: 1\ntimeline:\n  - server: {type: session.created}\n"
    )
    recording = config(standin.cassette_url("session"), RecordMode.ONCE)
    async with FakeUpstream(tmp_path, recording=recording) as recorder:
        await session_exchange(url(recorder, "fresh"), "one")
        await idle(recorder)
        await session_exchange(url(recorder, "fresh"), "two")  # same run: recorded too
        async with ws_connect(url(recorder, "existing")) as ws:
            assert (await recv_event(ws))["type"] == "session.created"
        await idle(recorder, standin)
        assert [r.outcome for r in recorder.reports()] == ["recorded", "recorded", "replayed"]
    assert markers(tmp_path / "fresh.yaml") == ["one", "two"]
    assert len(standin.reports()) == 2

    async with FakeUpstream(tmp_path, recording=recording) as later:  # the next run replays
        await session_exchange(url(later, "fresh"), "one")
        await idle(later)
        assert [r.outcome for r in later.reports()] == ["replayed"]
    assert len(standin.reports()) == 2


@pytest.mark.asyncio
async def test_mode_new_episodes_appends_every_connection(
    tmp_path: Path, standin: FakeUpstream
) -> None:
    recording = config(standin.cassette_url("session"), RecordMode.NEW_EPISODES)
    for run in ("first", "second"):
        async with FakeUpstream(tmp_path, recording=recording) as recorder:
            await session_exchange(url(recorder, "grow"), run)
            await idle(recorder)
            assert [r.outcome for r in recorder.reports()] == ["recorded"]
    assert markers(tmp_path / "grow.yaml") == ["first", "second"]


@pytest.mark.asyncio
async def test_mode_all_replaces_once_per_run_then_appends(
    tmp_path: Path, standin: FakeUpstream
) -> None:
    recording = config(standin.cassette_url("session"), RecordMode.ALL)
    for run in ("old", "new"):
        async with FakeUpstream(tmp_path, recording=recording) as recorder:
            await session_exchange(url(recorder, "redo"), f"{run}-1")
            await idle(recorder)
            await session_exchange(url(recorder, "redo"), f"{run}-2")
            await idle(recorder)
    assert markers(tmp_path / "redo.yaml") == ["new-1", "new-2"]


@pytest.mark.asyncio
async def test_episodes_are_saved_in_the_order_connections_opened(
    tmp_path: Path, standin: FakeUpstream
) -> None:
    recording = config(standin.cassette_url("session"), RecordMode.ONCE)
    async with FakeUpstream(tmp_path, recording=recording) as recorder:
        first = await ws_connect(url(recorder, "order"))
        await recv_event(first)
        await session_exchange(url(recorder, "order"), "second")  # opens later, ends first
        await send_event(
            first,
            {"type": "session.update", "session": {"type": "realtime", "instructions": "first"}},
        )
        await recv_event(first)
        await first.close()
        await idle(recorder)
    assert markers(tmp_path / "order.yaml") == ["first", "second"]


@pytest.mark.asyncio
async def test_two_recorders_never_interleave_one_file(
    tmp_path: Path, standin: FakeUpstream
) -> None:
    recording = config(standin.cassette_url("session"), RecordMode.NEW_EPISODES)
    async with (
        FakeUpstream(tmp_path, recording=recording) as one,
        FakeUpstream(tmp_path, recording=recording) as two,
    ):
        await asyncio.gather(
            *(
                session_exchange(url(server, "shared"), f"{tag}{n}")
                for n in range(8)
                for server, tag in ((one, "a"), (two, "b"))
            )
        )
        await idle(one, two)
        assert one.errors == two.errors == []
    tags = markers(tmp_path / "shared.yaml")
    assert sorted(tags) == sorted(f"{tag}{n}" for n in range(8) for tag in "ab")


def test_two_processes_appending_to_one_cassette_lose_nothing(tmp_path: Path) -> None:
    script = textwrap.dedent("""\
        import sys
        from pathlib import Path
        from fakeupstream.cassette import Direction, Episode, FrameStep
        from fakeupstream.recordmode import SaveAction
        from fakeupstream.storage.file_writer import CassetteWriter

        writer = CassetteWriter(Path(sys.argv[1]))
        for n in range(15):
            tag = f"{sys.argv[2]}{n}"
            episode = Episode(timeline=(
                FrameStep(Direction.SERVER, {"type": "session.created"}),
                FrameStep(Direction.CLIENT, {"type": "session.update",
                                             "session": {"instructions": tag}}),
                FrameStep(Direction.SERVER, {"type": "session.updated"}),
            ))
            writer.save("shared", episode, action=SaveAction.APPEND, upstream="ws://x", model="m")
        """)
    workers = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), tag], env=os.environ.copy())
        for tag in "ab"
    ]
    assert [worker.wait(TIMEOUT * 4) for worker in workers] == [0, 0]
    tags = markers(tmp_path / "shared.yaml")
    assert sorted(tags) == sorted(f"{tag}{n}" for n in range(15) for tag in "ab")
    assert [tag for tag in tags if tag.startswith("a")] == [f"a{n}" for n in range(15)]


@pytest_asyncio.fixture
async def silent() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """An upstream that accepts TCP connections and never answers the upgrade."""
    asked = asyncio.Event()
    writers = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writers.append(writer)
        asked.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/v1/realtime", asked
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_a_silent_upstream_is_a_504(
    tmp_path: Path, silent: tuple[str, asyncio.Event]
) -> None:
    upstream, _ = silent
    recording = config(upstream, connect_timeout=0.1)
    async with FakeUpstream(tmp_path, recording=recording) as recorder:
        with pytest.raises(InvalidStatus) as caught:
            async with ws_connect(url(recorder, "slow")):
                pass  # pragma: no cover - refused
    assert caught.value.response.status_code == 504
    assert listing(tmp_path) == []


@pytest.mark.asyncio
async def test_stopping_during_an_upstream_handshake_answers_503_at_once(
    tmp_path: Path, silent: tuple[str, asyncio.Event]
) -> None:
    upstream, asked = silent
    recorder = FakeUpstream(tmp_path, recording=config(upstream, connect_timeout=TIMEOUT * 2))
    await recorder.start()
    client = asyncio.create_task(ws_connect(url(recorder, "stopped")).__aenter__())
    async with asyncio.timeout(TIMEOUT):
        await asked.wait()  # the recorder is waiting for the upstream's answer
        await recorder.stop()
    with pytest.raises(InvalidStatus) as caught:
        await client
    assert caught.value.response.status_code == 503
    assert recorder.errors == []
