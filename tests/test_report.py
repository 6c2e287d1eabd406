"""Connection reports stay small whatever a client sends: excerpts, digests, counts."""

from __future__ import annotations

import hashlib
import json
import textwrap

from fakeupstream.replay import ReplaySession
from fakeupstream.report import (
    EXCERPT_CHARS,
    MAX_DIFFERENCES,
    MAX_MISMATCHES,
    MAX_PROTOCOL_ERRORS,
    ConnectionReport,
    Excerpt,
    Mismatch,
)
from fakeupstream.storage.yaml_reader import loads_cassette

EXPECTS_UPDATE = textwrap.dedent(
    """\
    version: 1
    timeline:
      - client: {type: session.update}
      - server: {type: session.updated}
    """
)


def test_a_flood_of_large_unexpected_frames_keeps_a_bounded_report() -> None:
    cassette = loads_cassette(EXPECTS_UPDATE, name="t")
    report = ConnectionReport(id=1, cassette="t", path="/v1/realtime")
    session = ReplaySession(
        cassette.timeline, report, start=0.0, speed=0.0, default_match=cassette.match
    )
    frames = [
        json.dumps({"type": "response.create", "n": n, "pad": "x" * 200_000}) for n in range(150)
    ]
    for frame in frames:
        session.receive(frame, 0.0)
    assert len(report.mismatches) == MAX_MISMATCHES
    assert report.mismatches_dropped == 150 - MAX_MISMATCHES
    first = report.mismatches[0].actual
    assert isinstance(first, Excerpt)
    compact = json.dumps(json.loads(frames[0]), separators=(",", ":")).encode()
    assert first.size == len(compact)
    assert first.sha256 == hashlib.sha256(compact).hexdigest()
    assert len(first.excerpt) == EXCERPT_CHARS
    served = json.dumps(report.to_json())
    assert len(served) < 1_000_000  # the frames were 30 MB
    assert report.failures()[-1] == "... and 50 more unexpected client frames"


def test_small_frames_are_kept_whole() -> None:
    report = ConnectionReport(id=1, cassette="t", path="/v1/realtime")
    report.add_mismatch(
        Mismatch("unexpected client frame", 0, 3, {"type": "a"}, {"type": "b"}, ["type: a != b"])
    )
    [kept] = report.mismatches
    assert (kept.expected, kept.actual) == ({"type": "a"}, {"type": "b"})
    assert report.to_json()["mismatches_dropped"] == 0


def test_differences_and_protocol_errors_are_bounded() -> None:
    report = ConnectionReport(id=1, cassette="t", path="/v1/realtime")
    lines = [f"key{n}: missing" for n in range(MAX_DIFFERENCES + 7)] + ["v: " + "y" * 10_000]
    report.add_mismatch(Mismatch("unexpected client frame", 0, 3, {}, {}, lines))
    kept = report.mismatches[0].differences
    assert len(kept) == MAX_DIFFERENCES + 1
    assert kept[-1] == "... and 8 more differences"
    for n in range(MAX_PROTOCOL_ERRORS + 5):
        report.add_protocol_error(f"invalid JSON {n}")
    assert len(report.protocol_errors) == MAX_PROTOCOL_ERRORS
    assert report.protocol_errors_dropped == 5
    report.add_protocol_error("z" * 10_000)
    assert report.protocol_errors_dropped == 6


def test_an_excerpt_of_a_long_string_has_its_size() -> None:
    value = "é" * (EXCERPT_CHARS + 1)
    excerpt = Excerpt.of(value)
    assert isinstance(excerpt, Excerpt)
    assert excerpt.size == len(json.dumps(value, ensure_ascii=False).encode())
    assert Excerpt.of("short") == "short"
    assert Excerpt.of(None) is None


def test_emulated_events_are_bounded_too() -> None:
    from fakeupstream.report import MAX_EMULATED, ConnectionReport

    report = ConnectionReport(id=1, cassette="c", path="/v1/realtime")
    for number in range(MAX_EMULATED + 25):
        report.add_emulated(f"'session.update' {number} answered by the session model")
    assert len(report.emulated) == MAX_EMULATED
    assert report.emulated_dropped == 25
    assert report.to_json()["emulated_dropped"] == 25
