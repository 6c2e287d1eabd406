"""Sidecar files: large base64 audio next to the cassette, by digest, loaded back exactly."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from fakeupstream.cassette import Cassette, Direction, Episode, FrameStep
from fakeupstream.cli import main
from fakeupstream.exceptions import CassetteError
from fakeupstream.storage.cassette_file import dump_cassette, load_cassette
from fakeupstream.storage.sidecars import SIDECAR_KEY, SidecarSink, sidecar_dir_name
from fakeupstream.storage.yaml_dumper import dumps_cassette
from fakeupstream.storage.yaml_reader import loads_cassette

SERVER, CLIENT = Direction.SERVER, Direction.CLIENT


def audio(size: int, seed: int = 0) -> str:
    """Deterministic "audio": ``size`` bytes as base64."""
    raw = bytes((seed + index * 7) % 256 for index in range(size))
    return base64.b64encode(raw).decode()


def audio_cassette(name: str = "talk", *, seconds: float = 1.0) -> Cassette:
    chunk = audio(int(24000 * 2 * 0.1))  # 100 ms of 24 kHz PCM16 per event
    chunks = int(seconds * 10)
    steps = [FrameStep(SERVER, {"type": "session.created", "event_id": "e0"})]
    steps += [
        FrameStep(CLIENT, {"type": "input_audio_buffer.append", "audio": chunk})
        for _ in range(chunks)
    ]
    steps += [
        FrameStep(
            SERVER,
            {"type": "response.output_audio.delta", "event_id": f"e{n}", "delta": audio(4800, n)},
            delay=0.02,
        )
        for n in range(1, chunks + 1)
    ]
    steps.append(FrameStep(SERVER, {"type": "response.output_audio.delta", "delta": "AAAA"}))
    return Cassette(name=name, episodes=(Episode(timeline=tuple(steps)),))


def test_large_payloads_move_out_and_load_back_identically(tmp_path: Path) -> None:
    cassette = audio_cassette()
    path = tmp_path / "talk.yaml"
    dump_cassette(cassette, path, sidecar_threshold=4096)
    text = path.read_text()
    files = sorted((tmp_path / "talk.sidecar").iterdir())
    # Ten identical appends are stored once; the ten deltas differ.
    assert len(files) == 11
    assert text.count(f'"{SIDECAR_KEY}": "talk.sidecar/') == 20
    assert "AAAA" in text  # small payloads stay inline
    again = load_cassette(path)
    assert again == cassette
    assert dumps_cassette(again) == dumps_cassette(cassette)  # inline dump: same as ever


def test_the_reference_names_the_file_its_digest_and_size(tmp_path: Path) -> None:
    payload = audio(6000)
    raw = base64.b64decode(payload)
    digest = hashlib.sha256(raw).hexdigest()
    sink = SidecarSink("one", threshold=4096)
    event = {"type": "input_audio_buffer.append", "event_id": "c1", "audio": payload}
    assert sink.event(CLIENT, event) == {
        "type": "input_audio_buffer.append",
        "event_id": "c1",
        "audio": {SIDECAR_KEY: f"one.sidecar/{digest[:32]}.bin", "sha256": digest, "bytes": 6000},
    }
    [stored] = sink.files.values()
    assert (stored.data, stored.sha256) == (raw, digest)


@pytest.mark.parametrize(
    ("direction", "event"),
    [
        (CLIENT, {"type": "input_audio_buffer.append", "audio": audio(3072)}),  # 4096 chars
        (SERVER, {"type": "input_audio_buffer.append", "audio": audio(6000)}),
        (CLIENT, {"type": "response.output_audio.delta", "delta": audio(6000)}),
        (SERVER, {"type": "response.output_text.delta", "delta": audio(6000)}),
        (CLIENT, {"type": "input_audio_buffer.append", "audio": "!" * 5000}),  # not base64
        (CLIENT, {"type": "input_audio_buffer.append", "audio": audio(6001).rstrip("=")}),
        # Non-canonical padding bits decode fine but would not come back byte for byte.
        (CLIENT, {"type": "input_audio_buffer.append", "audio": audio(6001)[:-3] + "B=="}),
    ],
)
def test_what_stays_inline(direction: Direction, event: dict[str, object]) -> None:
    sink = SidecarSink("x", threshold=4096)
    assert sink.event(direction, event) is event
    assert sink.files == {}


def test_threshold_zero_moves_every_audio_payload() -> None:
    sink = SidecarSink("x", threshold=0)
    moved = sink.event(CLIENT, {"type": "input_audio_buffer.append", "audio": "AAAA"})
    assert isinstance(moved["audio"], dict)
    with pytest.raises(ValueError, match="zero or more"):
        SidecarSink("x", threshold=-1)


def test_sidecars_keep_a_cassette_with_minutes_of_audio_readable(tmp_path: Path) -> None:
    cassette = audio_cassette(seconds=60)  # one minute each way
    inline = dumps_cassette(cassette)
    path = tmp_path / "talk.yaml"
    dump_cassette(cassette, path, sidecar_threshold=4096)
    assert len(inline) > 5_000_000
    assert path.stat().st_size < len(inline) / 20
    assert load_cassette(path) == cassette


def damaged(tmp_path: Path) -> tuple[Path, Path, int]:
    """A cassette with one sidecar; returns the cassette, the sidecar and the reference's line."""
    cassette = Cassette(
        "one",
        (
            Episode(
                timeline=(
                    FrameStep(SERVER, {"type": "session.created"}),
                    FrameStep(CLIENT, {"type": "input_audio_buffer.append", "audio": audio(6000)}),
                )
            ),
        ),
    )
    path = tmp_path / "one.yaml"
    dump_cassette(cassette, path, sidecar_threshold=4096)
    [sidecar] = (tmp_path / sidecar_dir_name("one")).iterdir()
    lines = path.read_text().splitlines()
    line = next(number for number, text in enumerate(lines, 1) if SIDECAR_KEY in text)
    return path, sidecar, line


def test_a_changed_sidecar_is_an_error_at_the_reference(tmp_path: Path) -> None:
    path, sidecar, line = damaged(tmp_path)
    sidecar.write_bytes(sidecar.read_bytes()[:-1] + b"\x00")
    with pytest.raises(CassetteError) as caught:
        load_cassette(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}:")
    assert "does not match its reference" in str(caught.value)


def test_a_missing_sidecar_is_an_error_at_the_reference(tmp_path: Path) -> None:
    path, sidecar, _ = damaged(tmp_path)
    sidecar.unlink()
    with pytest.raises(CassetteError, match=r"sidecar file 'one\.sidecar/.*\.bin' is missing"):
        load_cassette(path)


def test_check_verifies_the_digests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, sidecar, line = damaged(tmp_path)
    assert main(["check", "--no-sdk", str(path)]) == 0
    sidecar.write_bytes(b"tampered")
    assert main(["check", "--no-sdk", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:{line}:" in err
    assert "expected 6000 bytes" in err


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("{$sidecar: ../x.bin, sha256: ab, bytes: 1}", "must be relative"),
        ("{$sidecar: /etc/passwd, sha256: ab, bytes: 1}", "must be relative"),
        ("{$sidecar: x.bin, sha256: ab}", "exactly the keys"),
        ("{$sidecar: x.bin, sha256: ab, bytes: '1'}", "a byte count"),
    ],
)
def test_malformed_references_are_refused(tmp_path: Path, reference: str, problem: str) -> None:
    text = f"version: 1\ntimeline:\n  - client: {{type: t, audio: {reference}}}\n"
    with pytest.raises(CassetteError, match=problem) as caught:
        loads_cassette(text, name="x", path=tmp_path / "x.yaml")
    assert caught.value.line == 3


def test_a_reference_needs_the_cassette_file(tmp_path: Path) -> None:
    reference = "{$sidecar: a.bin, sha256: ab, bytes: 1}"
    text = f"version: 1\ntimeline:\n  - client: {{type: t, audio: {reference}}}\n"
    with pytest.raises(CassetteError, match="not loaded from a file"):
        loads_cassette(text, name="x")
