"""The sans-I/O recorder: events and times in, an episode out; no sockets, no clock."""

from __future__ import annotations

import json

import pytest

from fakeupstream.cassette import (
    CloseStep,
    Condition,
    Direction,
    Episode,
    FrameStep,
    Handshake,
    HandshakeRule,
    HttpExchange,
    Refusal,
)
from fakeupstream.record_session import (
    FrameData,
    RecordingSession,
    client_secrets,
    forwardable_close,
    rebase_exchange,
    rebase_times,
)
from fakeupstream.redaction import EPHEMERAL_PLACEHOLDER, REDACTED, Redactor
from fakeupstream.upgrade import UpgradeRequest

SERVER, CLIENT = Direction.SERVER, Direction.CLIENT
KEY = "sk-SENTINEL0123456789abcdefXYZ"
CLIENT_KEY = "sk-CLIENTKEY0123456789abcdefXYZ"


def request(target: str = "/v1/realtime?model=gpt-realtime", **kwargs: object) -> UpgradeRequest:
    headers = kwargs.pop("headers", [("Authorization", f"Bearer {CLIENT_KEY}")])
    return UpgradeRequest.from_target(target, headers, **kwargs)  # type: ignore[arg-type]


def session(**kwargs: object) -> RecordingSession:
    recording = RecordingSession(request(), **kwargs)  # type: ignore[arg-type]
    recording.accepted(100.0)
    return recording


def event(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, **fields})


def test_frames_keep_their_order_direction_and_delays_to_the_microsecond() -> None:
    recording = session()
    recording.frame(SERVER, event("session.created"), 100.004)
    recording.frame(CLIENT, event("session.update"), 100.3141592)
    recording.frame(SERVER, event("session.updated"), 100.6)
    recording.frame(SERVER, "not json {", 100.6)
    recording.frame(CLIENT, b"\x00\x01", 101.0)
    recording.frame(SERVER, "[1, 2]", 101.0)  # JSON, but not an event: kept as sent
    recording.frame(SERVER, '{"x": NaN}', 101.0)  # not storable as JSON: kept as text
    assert recording.episode().timeline == (
        FrameStep(SERVER, {"type": "session.created"}, delay=0.004),
        FrameStep(CLIENT, {"type": "session.update"}, delay=0.310159),
        FrameStep(SERVER, {"type": "session.updated"}, delay=0.285841),
        FrameStep(SERVER, "not json {"),
        FrameStep(CLIENT, b"\x00\x01", delay=0.4),
        FrameStep(SERVER, "[1, 2]"),
        FrameStep(SERVER, '{"x": NaN}'),
    )
    assert recording.frames == 7


def test_handshake_expect_holds_the_path_and_model_only() -> None:
    recording = RecordingSession(
        request(
            "/v1/realtime?model=gpt-realtime&api_key=" + CLIENT_KEY + "&debug=1",
            headers=[("Authorization", f"Bearer {CLIENT_KEY}"), ("OpenAI-Beta", "x")],
        )
    )
    expect = recording.episode().handshake.expect
    assert expect.path == "/v1/realtime"
    assert expect.query == (("model", "gpt-realtime"),)
    assert expect.headers == ()
    assert RecordingSession(request("/v1/realtime")).episode().handshake.expect.query == ()


def test_an_upstream_close_is_the_last_step() -> None:
    recording = session()
    recording.frame(SERVER, event("error"), 100.1)
    recording.ended(SERVER, 4000, "invalid_request_error.beta_api_shape_disabled", 100.15)
    recording.frame(CLIENT, event("late"), 100.2)  # after the end: not part of the session
    assert recording.closed
    assert recording.episode().timeline == (
        FrameStep(SERVER, {"type": "error"}, delay=0.1),
        CloseStep(4000, "invalid_request_error.beta_api_shape_disabled", delay=0.05),
    )


def test_a_client_close_just_ends_the_timeline() -> None:
    recording = session()
    recording.frame(SERVER, event("session.created"), 100.1)
    recording.ended(CLIENT, 1000, "bye", 100.2)
    recording.ended(SERVER, 1000, "", 100.3)  # the echo of the close is not a second end
    assert recording.episode().timeline == (FrameStep(SERVER, {"type": "session.created"}, 0.1),)


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (4000, "why", (4000, "why")),
        (1000, None, (1000, "")),
        (None, None, (1011, "upstream closed without a close frame")),
        (1006, "", (1011, "upstream closed without a close frame")),
        (1005, "", (1011, "upstream closed without a status code")),
        (1015, "", (1011, "upstream closed with code 1015")),
    ],
)
def test_closes_that_cannot_be_sent_become_1011(
    code: int | None, reason: str | None, expected: tuple[int, str]
) -> None:
    assert forwardable_close(code, reason, "upstream") == expected
    recording = session()
    recording.ended(SERVER, code, reason, 100.0)
    assert recording.episode().timeline == (CloseStep(*expected),)


def test_a_refusal_becomes_a_single_refuse_rule_with_an_empty_when() -> None:
    recording = RecordingSession(request())
    body = json.dumps({"error": {"message": f"bad key {CLIENT_KEY}", "code": "invalid_api_key"}})
    recording.refused(
        401,
        [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer"), ("X-Req", "1")],
        body.encode(),
    )
    episode = recording.episode()
    assert episode.timeline == ()
    assert episode.handshake.rules == (
        HandshakeRule(
            when=Condition(),
            refuse=Refusal(
                401, {"error": {"message": "bad key REDACTED", "code": "invalid_api_key"}}
            ),
        ),
    )


def test_a_refusal_with_a_text_body_keeps_the_text_and_its_type() -> None:
    recording = RecordingSession(request())
    recording.refused(503, [("content-type", "text/plain; charset=utf-8")], b"busy\n")
    [rule] = recording.episode().handshake.rules
    assert rule.refuse == Refusal(503, "busy\n", (("Content-Type", "text/plain; charset=utf-8"),))
    empty = RecordingSession(request())
    empty.refused(429, [], b"")
    assert empty.episode().handshake.rules[0].refuse == Refusal(429, None)


def test_the_clients_credentials_in_every_form_are_registered() -> None:
    upgrade = UpgradeRequest.from_target(
        "/v1/realtime?model=m&api_key=query-secret-123",
        [
            ("authorization", "Bearer header-secret-123"),
            ("X-Api-Key", "other-secret-123"),
            ("Cookie", "a=b"),
            ("OpenAI-Beta", "realtime=v1"),
        ],
        ["realtime", "openai-insecure-api-key.protocol-secret-123"],
    )
    assert client_secrets(upgrade) == [
        "header-secret-123",
        "other-secret-123",
        "query-secret-123",
        "protocol-secret-123",
    ]
    recording = RecordingSession(upgrade, redactor=Redactor([KEY]))
    assert set(recording.redactor.secrets) == {KEY, *client_secrets(upgrade)}


def test_every_frame_is_redacted() -> None:
    recording = RecordingSession(request(), redactor=Redactor([KEY]))
    recording.accepted(0.0)
    recording.frame(
        SERVER,
        event(
            "session.created",
            session={"client_secret": {"value": "ek_anything", "expires_at": 5}},
            note=f"real {KEY} and client {CLIENT_KEY}",
        ),
        0.0,
    )
    recording.frame(CLIENT, f"raw {CLIENT_KEY}", 0.0)
    recording.frame(CLIENT, f"raw {KEY}".encode(), 0.0)
    recording.ended(SERVER, 4000, f"bad {KEY}", 0.0)
    assert recording.episode().timeline == (
        FrameStep(
            SERVER,
            {
                "type": "session.created",
                "session": {"client_secret": {"value": EPHEMERAL_PLACEHOLDER, "expires_at": 5}},
                "note": f"real {REDACTED} and client {REDACTED}",
            },
        ),
        FrameStep(CLIENT, f"raw {REDACTED}"),
        FrameStep(CLIENT, f"raw {REDACTED}".encode()),
        CloseStep(4000, f"bad {REDACTED}"),
    )


def test_hooks_run_in_order_before_redaction_and_can_drop_frames() -> None:
    seen: list[tuple[Direction, FrameData]] = []

    def log(direction: Direction, data: FrameData) -> FrameData | None:
        seen.append((direction, data))
        return data

    def drop_audio(direction: Direction, data: FrameData) -> FrameData | None:
        if isinstance(data, dict) and data.get("type") == "input_audio_buffer.append":
            return None
        return data

    def leak(direction: Direction, data: FrameData) -> FrameData | None:
        # A hook cannot put a registered secret back: redaction runs after it.
        return {**data, "added": CLIENT_KEY} if isinstance(data, dict) else data

    recording = session(before_record=[log, drop_audio, leak])
    recording.frame(CLIENT, event("input_audio_buffer.append", audio="AAAA"), 100.1)
    recording.frame(CLIENT, event("input_audio_buffer.commit"), 100.3)
    assert seen == [
        (CLIENT, {"type": "input_audio_buffer.append", "audio": "AAAA"}),
        (CLIENT, {"type": "input_audio_buffer.commit"}),
    ]
    # The delay of a kept frame counts from the frame before it, dropped or not.
    assert recording.episode().timeline == (
        FrameStep(CLIENT, {"type": "input_audio_buffer.commit", "added": REDACTED}, delay=0.2),
    )
    assert recording.frames == 1


def test_a_failing_hook_marks_the_session_unsavable() -> None:
    def broken(direction: Direction, data: FrameData) -> FrameData | None:
        raise RuntimeError("boom")

    recording = session(before_record=[broken])
    recording.frame(SERVER, event("session.created"), 100.0)
    assert isinstance(recording.error, RuntimeError)
    assert recording.episode().timeline == ()


def test_rebase_moves_time_fields_of_server_frames_only() -> None:
    episode = Episode(
        handshake=Handshake(
            rules=(
                HandshakeRule(
                    Condition(), respond=(FrameStep(SERVER, {"created_at": 1000}), CloseStep(4000))
                ),
            )
        ),
        timeline=(
            FrameStep(SERVER, {"session": {"expires_at": 2000, "created_at": 0}, "n": [1]}),
            FrameStep(CLIENT, {"expires_at": 2000}),
            FrameStep(SERVER, {"items": [{"created_at": True}, {"created_at": 5}]}),
        ),
    )
    moved = rebase_times(episode, -100)
    assert moved.handshake.rules[0].respond[0] == FrameStep(SERVER, {"created_at": 900})
    assert moved.timeline == (
        FrameStep(SERVER, {"session": {"expires_at": 1900, "created_at": 0}, "n": [1]}),
        FrameStep(CLIENT, {"expires_at": 2000}),
        FrameStep(SERVER, {"items": [{"created_at": True}, {"created_at": -95}]}),
    )
    assert rebase_times(episode, 0) is episode


def test_an_http_answer_is_rebased_like_a_frame() -> None:
    exchange = HttpExchange(
        "POST",
        "/v1/realtime/client_secrets",
        200,
        request_body={"expires_after": {"seconds": 600}, "expires_at": 50},
        response_body={"value": "ek_REDACTED", "expires_at": 2000, "session": {"expires_at": 0}},
    )
    moved = rebase_exchange(exchange, -100)
    assert moved.response_body == {
        "value": "ek_REDACTED",
        "expires_at": 1900,
        "session": {"expires_at": 0},
    }
    assert moved.request_body == exchange.request_body  # what the client sent stays
    assert rebase_exchange(exchange, 0) is exchange
