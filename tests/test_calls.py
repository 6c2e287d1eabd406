"""WebRTC calls as plain data: the SDP answer, the call registry, and the legacy sessions."""

from __future__ import annotations

import itertools
import json

from fakeupstream.calls import Calls, sdp_answer
from fakeupstream.http_request import HttpRequest
from fakeupstream.rest import KeyAccepted, RealtimeRest

OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=ice-ufrag:abc\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\na=sctp-port:5000\r\n"
)
AUTH = (("Authorization", "Bearer sk-test"),)


def calls() -> Calls:
    counter = itertools.count(1)
    return Calls(lambda: f"call{next(counter)}")


def test_the_answer_mirrors_the_offered_media() -> None:
    answer = sdp_answer(OFFER, "rtc_x").split("\r\n")
    assert answer[0] == "v=0"
    assert "a=group:BUNDLE 0 1" in answer
    assert [line for line in answer if line.startswith("m=")] == [
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    ]
    assert "a=rtpmap:111 opus/48000/2" in answer
    assert "a=sctp-port:5000" in answer
    assert "a=ice-ufrag:abc" not in answer  # the offerer's credentials are not echoed


def test_a_raw_sdp_offer_creates_a_call() -> None:
    registry = calls()
    response = registry.create(
        HttpRequest(
            "POST", "/v1/realtime/calls", (("Content-Type", "application/sdp"),), OFFER.encode()
        )
    )
    assert response.status == 201
    assert dict(response.headers) == {
        "Content-Type": "application/sdp",
        "Location": "/v1/realtime/calls/rtc_call1",
    }
    assert response.body.startswith(b"v=0\r\n")
    assert registry.sessions == {"rtc_call1": {}}


def test_a_multipart_offer_keeps_its_session_config() -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="sdp"\r\n'
        f"Content-Type: application/sdp\r\n\r\n{OFFER}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="session"\r\n'
        f"Content-Type: application/json\r\n\r\n"
        '{"type": "realtime", "instructions": "Pirate."}\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    registry = calls()
    headers = (("Content-Type", f"multipart/form-data; boundary={boundary}"),)
    assert registry.create(HttpRequest("POST", "/v1/realtime/calls", headers, body)).status == 201
    assert registry.sessions["rtc_call1"] == {"type": "realtime", "instructions": "Pirate."}


def test_bad_offers_get_400() -> None:
    registry = calls()
    for body in (b"", b"hello"):
        answer = registry.create(HttpRequest("POST", "/v1/realtime/calls", (), body))
        assert answer.status == 400
        assert json.loads(answer.body)["error"]["param"] == "sdp"
    assert registry.sessions == {}


def test_call_control_knows_its_calls() -> None:
    registry = calls()
    registry.create(HttpRequest("POST", "/v1/realtime/calls", (), OFFER.encode()))
    assert registry.control("rtc_call1", "accept").status == 200
    assert registry.control("rtc_call1", "refer").status == 200
    assert registry.control("rtc_call1", "steal").status == 404
    assert registry.control("rtc_call1", "hangup").status == 200
    answer = registry.control("rtc_call1", "hangup")
    assert answer.status == 404
    assert json.loads(answer.body)["error"]["code"] == "call_not_found"


def rest() -> RealtimeRest:
    counter = itertools.count(1)
    return RealtimeRest(
        list, lambda: f"{next(counter):032x}", lambda: "sess_T", lambda: f"c{next(counter)}"
    )


def test_the_rest_side_routes_calls_and_opens_their_sideband() -> None:
    api = rest()
    created = api.handle(HttpRequest("POST", "/v1/realtime/calls", AUTH, OFFER.encode()), 0)
    assert created is not None and created.status == 201
    location = dict(created.headers)["Location"]
    call_id = location.rsplit("/", 1)[1]
    assert api.sideband(f"/v1/realtime?call_id={call_id}") == KeyAccepted({})
    assert api.sideband("/v1/realtime?call_id=rtc_unknown") is None
    hangup = api.handle(HttpRequest("POST", f"{location}/hangup", AUTH), 0)
    assert hangup is not None and hangup.status == 200
    unauthenticated = api.handle(HttpRequest("POST", "/v1/realtime/calls", (), OFFER.encode()), 0)
    assert unauthenticated is not None and unauthenticated.status == 401


def test_the_legacy_sessions_endpoint_answers_the_beta_shape() -> None:
    api = rest()
    body = json.dumps({"model": "gpt-realtime", "instructions": "Pirate.", "voice": "verse"})
    answer = api.handle(HttpRequest("POST", "/v1/realtime/sessions", AUTH, body.encode()), 100)
    assert answer is not None and answer.status == 200
    session = json.loads(answer.body)
    assert session["object"] == "realtime.session"
    assert session["modalities"] == ["audio", "text"]
    assert session["instructions"] == "Pirate."
    assert session["voice"] == "verse"
    secret = session["client_secret"]
    assert secret["value"].startswith("ek_") and secret["expires_at"] == 160
    verdict = api.check_key((("Authorization", f"Bearer {secret['value']}"),), (), 100)
    assert verdict == KeyAccepted(
        {
            "type": "realtime",
            "model": "gpt-realtime",
            "instructions": "Pirate.",
            "audio": {"output": {"voice": "verse"}},
        }
    )
