"""Saving recorded episodes: the time anchor, append and replace, sidecars, refusals."""

from __future__ import annotations

import base64
import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from fakeupstream import FakeUpstream, RecordingConfig, RecordMode, load_cassette
from fakeupstream.cassette import Direction, Episode, FrameStep, HttpExchange
from fakeupstream.exceptions import RecordError, SecretLeakError
from fakeupstream.recordmode import SaveAction
from fakeupstream.storage.file_writer import CassetteWriter, cassette_lock
from fakeupstream.storage.library import CassetteLibrary

from ..helpers import recv_event, send_event, ws_connect

SERVER, CLIENT = Direction.SERVER, Direction.CLIENT
T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
KEY = "sk-SENTINEL0123456789abcdefXYZ"


def episode(expires_at: int = 0, tag: str = "", audio: str = "") -> Episode:
    steps = [FrameStep(SERVER, {"type": "session.created", "session": {"expires_at": expires_at}})]
    if tag:
        steps.append(FrameStep(CLIENT, {"type": "session.update", "tag": tag}))
    if audio:
        steps.append(FrameStep(SERVER, {"type": "response.output_audio.delta", "delta": audio}))
    return Episode(timeline=tuple(steps))


def field(item: Episode, index: int, *keys: str) -> Any:
    """A value inside the ``index``-th frame of an episode."""
    value: Any = item.timeline[index].data  # type: ignore[union-attr]
    for key in keys:
        value = value[key]
    return value


def save(writer: CassetteWriter, item: Episode, action: SaveAction, **options: object) -> Path:
    options.setdefault("upstream", "wss://api.openai.com/v1/realtime?api_key=" + KEY)
    options.setdefault("model", "gpt-realtime")
    return writer.save("c", item, action=action, **options).path  # type: ignore[arg-type]


def test_recorded_at_is_the_current_utc_time(tmp_path: Path) -> None:
    with freeze_time("2026-03-04T05:06:07Z"):
        path = save(CassetteWriter(tmp_path), episode(), SaveAction.APPEND)
    recorded = load_cassette(path).recorded
    assert recorded.at == T0
    assert recorded.upstream == "wss://api.openai.com/v1/realtime?api_key=REDACTED"
    assert recorded.model == "gpt-realtime"
    assert recorded.fakeupstream
    assert "at: '2026-03-04T05:06:07Z'" in path.read_text()


def test_an_appended_episode_is_rebased_onto_the_files_anchor(tmp_path: Path) -> None:
    writer = CassetteWriter(tmp_path)
    start = int(T0.timestamp())
    save(writer, episode(start + 3600, "old"), SaveAction.APPEND, now=T0)
    later = T0 + timedelta(days=30)
    path = save(writer, episode(int(later.timestamp()) + 3600, "new"), SaveAction.APPEND, now=later)
    cassette = load_cassette(path)
    assert cassette.recorded.at == T0
    # Both sessions expire an hour after the (one) anchor: replay shifts them alike.
    expiries = [field(item, 0, "session", "expires_at") for item in cassette.episodes]
    assert expiries == [start + 3600, start + 3600]


def test_replace_drops_old_episodes_and_their_sidecars(tmp_path: Path) -> None:
    writer = CassetteWriter(tmp_path, sidecar_threshold=100)
    old_audio = base64.b64encode(b"\x01" * 300).decode()
    new_audio = base64.b64encode(b"\x02" * 300).decode()
    save(writer, episode(tag="a", audio=old_audio), SaveAction.APPEND)
    save(writer, episode(tag="b", audio=old_audio), SaveAction.APPEND)
    sidecars = tmp_path / "c.sidecar"
    assert len(list(sidecars.iterdir())) == 1  # the same audio twice: stored once
    path = save(writer, episode(tag="c", audio=new_audio), SaveAction.REPLACE)
    cassette = load_cassette(path)
    assert [field(item, 1, "tag") for item in cassette.episodes] == ["c"]
    assert len(list(sidecars.iterdir())) == 1
    assert field(cassette.episodes[0], 2, "delta") == new_audio


def test_append_never_overwrites_a_cassette_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("version: 1\ntimeline: [{bogus: 1}]\n")
    with pytest.raises(RecordError, match=r"cannot append to .*c\.yaml: it is not a valid"):
        save(CassetteWriter(tmp_path), episode(), SaveAction.APPEND)
    assert (tmp_path / "c.yaml").read_text() == "version: 1\ntimeline: [{bogus: 1}]\n"
    save(CassetteWriter(tmp_path), episode(), SaveAction.REPLACE)  # re-recording may
    assert len(load_cassette(tmp_path / "c.yaml").episodes) == 1


def test_append_keeps_a_hand_written_description(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("version: 1\ndescription: Mine.\ntimeline: []\n")
    path = save(CassetteWriter(tmp_path), episode(), SaveAction.APPEND)
    cassette = load_cassette(path)
    assert cassette.description == "Mine."
    assert len(cassette.episodes) == 2


def test_the_guard_also_reads_the_sidecars(tmp_path: Path) -> None:
    leaky = base64.b64encode(b"\x00" * 200 + KEY.encode() + b"\x00" * 200).decode()
    with pytest.raises(SecretLeakError) as caught:
        save(
            CassetteWriter(tmp_path, sidecar_threshold=100),
            episode(audio=leaky),
            SaveAction.APPEND,
            secrets=[KEY],
        )
    assert caught.value.findings[0].startswith("c.sidecar/")
    assert caught.value.findings[0].endswith(": a secret in use (sk-SE…)")
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # nothing written, no lock left


def test_a_name_that_is_not_a_cassette_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="not a valid cassette name"):
        CassetteWriter(tmp_path).save(
            "../x", episode(), action=SaveAction.APPEND, upstream="ws://x", model=None
        )


@pytest.mark.asyncio
async def test_a_recording_replays_with_its_times_shifted_to_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with freeze_time("2026-03-04T05:06:07Z", real_asyncio=True):
        async with FakeUpstream() as standin:
            recording = RecordingConfig.from_env(
                RecordMode.ONCE, upstream=standin.cassette_url("session")
            )
            async with (
                FakeUpstream(tmp_path, recording=recording) as recorder,
                ws_connect(f"{recorder.url}/cassettes/t/v1/realtime?model=m") as ws,
            ):
                live = await recv_event(ws)
                await send_event(ws, {"type": "session.update", "session": {"type": "realtime"}})
                await recv_event(ws)
    assert load_cassette(tmp_path / "t.yaml").recorded.at == T0
    assert live["session"]["expires_at"] == int(T0.timestamp()) + 3600
    with freeze_time("2026-09-01T00:00:00Z", real_asyncio=True):
        async with (
            FakeUpstream(tmp_path) as replay,
            ws_connect(f"{replay.url}/cassettes/t/v1/realtime?model=m") as ws,
        ):
            replayed = await recv_event(ws)
    later = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp())
    assert replayed["session"]["expires_at"] == later + 3600


def test_a_name_with_a_directory_is_a_file_in_that_directory(tmp_path: Path) -> None:
    writer = CassetteWriter(tmp_path, sidecar_threshold=100)
    audio = base64.b64encode(b"\x01" * 300).decode()
    saved = writer.save(
        "test_chat/test_reply",
        episode(tag="a", audio=audio),
        action=SaveAction.APPEND,
        upstream="ws://x",
        model=None,
    )
    assert saved.path == tmp_path / "test_chat" / "test_reply.yaml"
    [sidecar] = (tmp_path / "test_chat" / "test_reply.sidecar").iterdir()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "test_chat",
        "test_chat/test_reply.sidecar",
        f"test_chat/test_reply.sidecar/{sidecar.name}",
        "test_chat/test_reply.yaml",
    ]  # no lock file, no temporary file
    library = CassetteLibrary(tmp_path)
    assert library.names() == ["test_chat/test_reply"]
    cassette = library.load("test_chat/test_reply")
    assert cassette.name == "test_chat/test_reply"
    assert field(cassette.episodes[0], 2, "delta") == audio


def test_cassettes_are_written_with_a_normal_files_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    path = save(CassetteWriter(tmp_path), episode(), SaveAction.APPEND)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o600)  # a mode the user chose is kept
    save(CassetteWriter(tmp_path), episode(), SaveAction.APPEND)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "name", ["../x", "/abs", "a//b", "a/.b", "a/../b", "a\\b", "a/b.yaml", "a/"]
)
def test_a_name_that_could_leave_the_directory_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(RecordError, match="not a valid cassette name"):
        CassetteWriter(tmp_path).path_for(name)


def test_the_lock_excludes_while_its_file_comes_and_goes(tmp_path: Path) -> None:
    holders: list[int] = []
    overlaps: list[list[int]] = []

    def work(number: int) -> None:
        for _ in range(50):
            with cassette_lock(tmp_path, "sub/c"):
                holders.append(number)
                if len(holders) > 1:
                    overlaps.append(list(holders))
                holders.remove(number)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert list((tmp_path / "sub").iterdir()) == []  # the lock file is gone too


def test_the_guard_decodes_binary_frames(tmp_path: Path) -> None:
    # Not a registered secret: found by its shape, inside bytes the cassette stores as base64.
    key = "sk-proj-" + "A1b2C3d4" * 6
    frame = FrameStep(SERVER, b"\x00\x01" + key.encode() + b"\xff")
    with pytest.raises(SecretLeakError) as caught:
        save(CassetteWriter(tmp_path), Episode(timeline=(frame,)), SaveAction.APPEND)
    [finding] = caught.value.findings
    assert finding == "connection 1, step 0 (server binary), byte 2: an OpenAI API key (sk-pr…)"
    assert key not in str(caught.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # nothing written, no lock left


def test_the_guard_finds_other_vendors_keys_in_sidecars(tmp_path: Path) -> None:
    leaky = base64.b64encode(b"\x00" * 200 + b"AKIAIOSFODNN7EXAMPLE" + b"\x00" * 200).decode()
    with pytest.raises(SecretLeakError) as caught:
        save(
            CassetteWriter(tmp_path, sidecar_threshold=100), episode(audio=leaky), SaveAction.APPEND
        )
    assert caught.value.findings[0].endswith("an AWS access key (AKIAI…)")


def test_a_killed_saves_temporary_files_are_removed_by_the_next_save(tmp_path: Path) -> None:
    # What `kill -9` between mkstemp and rename leaves: the same names write_atomically uses.
    left = tmp_path / ".c.yaml.k1ll3d.tmp"
    left.write_bytes(b"x" * 1000)
    sidecars = tmp_path / "c.sidecar"
    sidecars.mkdir()
    (sidecars / ".0123.bin.k1ll3d.tmp").write_bytes(b"y")
    other = tmp_path / ".other.yaml.k1ll3d.tmp"  # another cassette's: not ours to judge
    other.write_bytes(b"z")
    save(CassetteWriter(tmp_path), episode(), SaveAction.APPEND)
    assert not left.exists()
    assert list(sidecars.iterdir()) == []
    assert other.exists()


def test_temporary_names_match_the_suggested_gitignore(tmp_path: Path) -> None:
    import fnmatch

    from fakeupstream.storage import atomic

    seen: list[str] = []
    real_replace = atomic.os.replace

    def spy(source: str, target: Path) -> None:
        seen.append(Path(source).name)
        real_replace(source, target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(atomic.os, "replace", spy)
        save(CassetteWriter(tmp_path), episode(), SaveAction.APPEND)
    assert seen
    gitignore = (Path(__file__).parents[2] / ".gitignore").read_text().splitlines()
    assert atomic.TEMPORARY_PATTERN in gitignore
    assert all(fnmatch.fnmatch(name, atomic.TEMPORARY_PATTERN) for name in seen)


# -- HTTP exchanges (the REST side) ---------------------------------------------------------


def exchange(expires_at: int, value: str = "ek_REDACTED") -> HttpExchange:
    return HttpExchange(
        "POST",
        "/v1/realtime/client_secrets",
        200,
        request_body={"session": {"instructions": "Be brief."}},
        response_body={"value": value, "expires_at": expires_at},
    )


def test_an_exchange_before_any_connection_then_the_connection_takes_the_placeholder(
    tmp_path: Path,
) -> None:
    writer = CassetteWriter(tmp_path)
    start = int(T0.timestamp())
    first = writer.save(
        "c", exchange(start + 600), action=SaveAction.APPEND, upstream="wss://u", model=None, now=T0
    )
    assert (first.connections, first.exchanges, first.frames) == (0, 1, 0)
    only_http = load_cassette(first.path)
    assert only_http.simulated and "timeline" not in first.path.read_text()
    later = T0 + timedelta(seconds=5)
    saved = writer.save(
        "c",
        episode(int(later.timestamp()) + 3600, "after"),
        action=SaveAction.APPEND,
        upstream="wss://u",
        model="gpt-realtime",
        now=later,
    )
    assert (saved.connections, saved.exchanges) == (1, 1)
    cassette = load_cassette(saved.path)
    assert not cassette.simulated and len(cassette.episodes) == 1
    assert cassette.http == (exchange(start + 600),)
    assert cassette.recorded.at == T0  # the exchange came first: it set the anchor
    assert field(cassette.episodes[0], 0, "session", "expires_at") == start + 3600
    text = saved.path.read_text()
    assert text.index("http:") < text.index("timeline:")


def test_an_exchange_appended_to_an_older_cassette_is_rebased_onto_its_anchor(
    tmp_path: Path,
) -> None:
    writer = CassetteWriter(tmp_path)
    start = int(T0.timestamp())
    save(writer, episode(start + 3600, "old"), SaveAction.APPEND, now=T0)
    later = T0 + timedelta(days=30)
    saved = writer.save(
        "c",
        exchange(int(later.timestamp()) + 600),
        action=SaveAction.APPEND,
        upstream="wss://u",
        model=None,
        now=later,
    )
    cassette = load_cassette(saved.path)
    assert len(cassette.episodes) == 1 and cassette.recorded.model == "gpt-realtime"
    assert cassette.http == (exchange(start + 600),)


def test_replacing_with_an_exchange_drops_the_connections(tmp_path: Path) -> None:
    writer = CassetteWriter(tmp_path)
    save(writer, episode(tag="old"), SaveAction.APPEND)
    saved = writer.save("c", exchange(1), action=SaveAction.REPLACE, upstream="wss://u", model=None)
    assert load_cassette(saved.path).simulated and saved.connections == 0


def test_the_guard_refuses_an_exchange_holding_a_minted_key(tmp_path: Path) -> None:
    minted = "ek_0123456789abcdef0123456789abcdef"
    writer = CassetteWriter(tmp_path)
    with pytest.raises(SecretLeakError, match="an ephemeral client secret"):
        writer.save("c", exchange(1, minted), action=SaveAction.APPEND, upstream="u", model=None)
    with pytest.raises(SecretLeakError, match="a secret in use"):
        writer.save(
            "c",
            exchange(1, f"see {minted}"),
            action=SaveAction.APPEND,
            upstream="u",
            model=None,
            secrets=[minted],
        )
    assert list(tmp_path.iterdir()) == []
