"""The REST side as plain data: models, client secrets, and what an ek_ key opens."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from fakeupstream.cassette import Cassette, CloseStep, FrameStep, HttpExchange, Recorded
from fakeupstream.http_request import HttpRequest
from fakeupstream.responses import HttpResponse
from fakeupstream.rest import (
    KeyAccepted,
    KeyRejected,
    RealtimeRest,
    cassette_models,
    invalid_key_steps,
    is_rest_route,
    target_with_model,
    with_session_config,
)
from fakeupstream.storage.library import CassetteLibrary

AUTH = (("Authorization", "Bearer sk-test"),)
NOW = 1_800_000_000.0


@pytest.fixture
def rest() -> RealtimeRest:
    counter = itertools.count(1)
    return RealtimeRest(
        lambda: ["gpt-realtime-mini", "gpt-realtime"],
        new_secret=lambda: f"{next(counter):032x}",
        new_session_id=lambda: "sess_TEST",
    )


def call(
    rest: RealtimeRest,
    method: str,
    target: str,
    body: Any = None,
    headers: tuple[tuple[str, str], ...] = AUTH,
    now: float = NOW,
) -> tuple[int, Any]:
    raw = (
        b"" if body is None else json.dumps(body).encode() if not isinstance(body, bytes) else body
    )
    answer = rest.handle(HttpRequest(method, target, headers, raw), now)
    assert isinstance(answer, HttpResponse)
    return answer.status, json.loads(answer.body)


def mint(rest: RealtimeRest, session: dict[str, Any], **extra: Any) -> dict[str, Any]:
    status, body = call(rest, "POST", "/v1/realtime/client_secrets", {"session": session, **extra})
    assert status == 200, body
    return body


def test_models_lists_gpt_realtime_and_the_cassettes_models_once(rest: RealtimeRest) -> None:
    status, body = call(rest, "GET", "/v1/models")
    assert status == 200
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["gpt-realtime", "gpt-realtime-mini"]
    assert all(m["object"] == "model" and m["owned_by"] == "system" for m in body["data"])


def test_one_model_or_the_live_apis_404(rest: RealtimeRest) -> None:
    assert call(rest, "GET", "/cassettes/x/v1/models/gpt-realtime-mini")[1]["id"] == (
        "gpt-realtime-mini"
    )
    status, body = call(rest, "GET", "/v1/models/gpt-nope")
    assert status == 404
    assert body["error"]["code"] == "model_not_found"
    assert body["error"]["message"] == (
        "The model 'gpt-nope' does not exist or you do not have access to it."
    )


def test_routes_need_a_key_and_their_method(rest: RealtimeRest) -> None:
    status, body = call(rest, "GET", "/v1/models", headers=())
    assert status == 401
    assert body["error"]["message"].startswith("You didn't provide an API key.")
    assert call(rest, "POST", "/v1/models")[0] == 405
    assert call(rest, "GET", "/v1/realtime/client_secrets")[0] == 405


def test_other_paths_are_not_rest_routes(rest: RealtimeRest) -> None:
    for target in ("/v1/realtime", "/loads", "/v1/chat/completions"):
        assert rest.handle(HttpRequest("POST", target, AUTH), NOW) is None


def test_a_client_secret_is_minted_from_the_session_config(rest: RealtimeRest) -> None:
    body = mint(rest, {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."})
    assert body["value"] == "ek_" + f"{1:032x}"
    assert body["expires_at"] == int(NOW) + 600
    session = body["session"]
    assert session["instructions"] == "Be brief."
    assert session["object"] == "realtime.session"
    assert session["id"] == "sess_TEST"
    assert session["audio"]["output"]["voice"] == "alloy"


def test_the_session_config_merges_into_the_defaults(rest: RealtimeRest) -> None:
    session = mint(
        rest,
        {"type": "realtime", "audio": {"output": {"voice": "marin"}}},
        expires_after={"anchor": "created_at", "seconds": 10},
    )
    assert session["expires_at"] == int(NOW) + 10
    assert session["session"]["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "marin",
        "speed": 1.0,
    }


def test_a_translation_secret_has_its_own_session_type(rest: RealtimeRest) -> None:
    status, body = call(rest, "POST", "/v1/realtime/translations/client_secrets", {})
    assert status == 200
    assert body["session"]["type"] == "translation"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"not json", None),
        ([1, 2], None),
        ({"expires_after": {"seconds": 5}}, "expires_after.seconds"),
        ({"expires_after": {"seconds": 7201}}, "expires_after.seconds"),
        ({"expires_after": {"seconds": True}}, "expires_after.seconds"),
        ({"expires_after": "soon"}, "expires_after.seconds"),
        ({"session": "realtime"}, "session"),
        ({"session": {"type": "beta"}}, "session.type"),
    ],
)
def test_bad_client_secret_requests_get_400(rest: RealtimeRest, body: Any, param: str) -> None:
    status, answer = call(rest, "POST", "/v1/realtime/client_secrets", body)
    assert status == 400
    assert answer["error"]["param"] == param


def test_a_minted_key_opens_its_session_until_it_expires(rest: RealtimeRest) -> None:
    value = mint(
        rest, {"type": "realtime", "instructions": "Pirate."}, expires_after={"seconds": 60}
    )["value"]
    bearer = (("Authorization", f"Bearer {value}"),)
    assert rest.check_key(bearer, (), NOW + 59) == KeyAccepted(
        {"type": "realtime", "instructions": "Pirate."}
    )
    browser = ("realtime", f"openai-insecure-api-key.{value}")
    assert isinstance(rest.check_key((), browser, NOW), KeyAccepted)
    assert rest.check_key(bearer, (), NOW + 60) == KeyRejected(value)


def test_unknown_keys_are_rejected_and_other_keys_are_not_checked(rest: RealtimeRest) -> None:
    unknown = "ek_" + "f" * 32
    assert rest.check_key((("Authorization", f"Bearer {unknown}"),), (), NOW) == KeyRejected(
        unknown
    )
    assert rest.check_key(AUTH, (), NOW) is None
    assert rest.check_key((("Authorization", "Bearer ek_test"),), (), NOW) is None
    assert rest.check_key((), (), NOW) is None


def test_session_created_shows_the_keys_config_and_nothing_else_changes() -> None:
    created = json.dumps(
        {
            "type": "session.created",
            "session": {
                "id": "sess_1",
                "instructions": "",
                "audio": {"output": {"voice": "x", "speed": 1.0}},
            },
        }
    )
    shown = json.loads(
        with_session_config(
            created, {"instructions": "Pirate.", "audio": {"output": {"voice": "marin"}}}
        )
    )
    assert shown["session"] == {
        "id": "sess_1",
        "instructions": "Pirate.",
        "audio": {"output": {"voice": "marin", "speed": 1.0}},
    }
    other = '{"type":"session.updated","session":{"instructions":""}}'
    assert with_session_config(other, {"instructions": "Pirate."}) == other
    assert with_session_config(b"\x00", {"instructions": "Pirate."}) == b"\x00"


def test_an_invalid_key_gets_the_live_error_then_close_3000() -> None:
    error, close = invalid_key_steps("ek_0123456789abcdef0123456789abcdef", "event_1")
    assert isinstance(error, FrameStep) and isinstance(error.data, dict)
    assert error.data["error"]["code"] == "invalid_api_key"
    assert "ek_0123***...cdef" in error.data["error"]["message"]
    assert "456789ab" not in error.data["error"]["message"]
    assert close == CloseStep(3000, "invalid_request_error.invalid_api_key")


def test_a_key_without_a_model_in_the_url_uses_the_keys_model() -> None:
    accepted = KeyAccepted({"model": "gpt-realtime-mini"})
    assert target_with_model("/v1/realtime", accepted) == "/v1/realtime?model=gpt-realtime-mini"
    assert target_with_model("/v1/realtime?model=m", accepted) == "/v1/realtime?model=m"
    assert target_with_model("/v1/realtime", None) == "/v1/realtime"
    assert target_with_model("/v1/realtime", KeyAccepted({})) == "/v1/realtime?model=gpt-realtime"


def test_the_bundled_cassettes_name_their_models() -> None:
    library = CassetteLibrary()
    assert cassette_models(library.load("text_response")) == {"gpt-realtime-2025-08-28"}


# -- answers recorded in the selected cassette ------------------------------------------

RECORDED_AT = datetime.fromtimestamp(NOW - 86_400, UTC)  # recorded a day before NOW
RECORDED_SECRET = HttpExchange(
    "POST",
    "/v1/realtime/client_secrets",
    200,
    request_body={"session": {"instructions": "Recorded."}},
    response_body={
        "value": "ek_REDACTED",
        "expires_at": int(RECORDED_AT.timestamp()) + 600,
        "session": {"id": "sess_REC", "instructions": "Recorded.", "expires_at": 0},
    },
    response_headers=(("content-type", "application/json"),),
)
RECORDED = Cassette(
    name="minted",
    recorded=Recorded(at=RECORDED_AT),
    http=(
        RECORDED_SECRET,
        HttpExchange(
            "POST",
            "/v1/realtime/sessions",
            200,
            response_body={
                "id": "sess_OLD",
                "client_secret": {
                    "value": "ek_REDACTED",
                    "expires_at": int(RECORDED_AT.timestamp()) + 60,
                },
            },
        ),
        HttpExchange("GET", "/v1/models", 200, response_body={"object": "list", "data": []}),
    ),
)


def replayed(
    rest: RealtimeRest, target: str, body: Any = None, headers: tuple[tuple[str, str], ...] = AUTH
) -> tuple[int, Any]:
    raw = b"" if body is None else json.dumps(body).encode()
    answer = rest.handle(HttpRequest("POST", target, headers, raw), NOW, RECORDED)
    assert isinstance(answer, HttpResponse)
    return answer.status, json.loads(answer.body)


def test_a_recorded_client_secret_answers_with_a_fresh_key_and_times_moved_to_now(
    rest: RealtimeRest,
) -> None:
    asked = {"session": {"type": "realtime", "instructions": "Asked now."}}
    status, body = replayed(rest, "/cassettes/minted/v1/realtime/client_secrets", asked)
    assert status == 200
    assert body["value"] == "ek_" + f"{1:032x}"  # minted here, not the placeholder
    assert body["expires_at"] == NOW + 600  # recorded 600 s after the recording: now + 600
    assert body["session"] == {"id": "sess_REC", "instructions": "Recorded.", "expires_at": 0}
    bearer = (("Authorization", f"Bearer {body['value']}"),)
    # The key opens a session from what the client asks for now, until it expires.
    assert rest.check_key(bearer, (), NOW + 599) == KeyAccepted(asked["session"])
    assert rest.check_key(bearer, (), NOW + 600) == KeyRejected(body["value"])


def test_a_recorded_legacy_session_gets_a_fresh_key_too(rest: RealtimeRest) -> None:
    status, body = replayed(rest, "/v1/realtime/sessions", {"instructions": "Old style."})
    secret = body["client_secret"]
    assert status == 200 and secret["value"].startswith("ek_") and secret["value"] != "ek_REDACTED"
    assert secret["expires_at"] == NOW + 60
    bearer = (("Authorization", f"Bearer {secret['value']}"),)
    accepted = rest.check_key(bearer, (), NOW)
    assert isinstance(accepted, KeyAccepted)
    assert accepted.session["instructions"] == "Old style."


def test_a_recorded_answer_still_needs_a_key_and_the_method(rest: RealtimeRest) -> None:
    assert replayed(rest, "/v1/realtime/client_secrets", headers=())[0] == 401
    answer = rest.handle(HttpRequest("GET", "/v1/realtime/client_secrets", AUTH), NOW, RECORDED)
    assert answer is not None and answer.status == 405


def test_what_the_cassette_did_not_record_is_answered_from_state(rest: RealtimeRest) -> None:
    answer = rest.handle(HttpRequest("GET", "/v1/models/gpt-realtime", AUTH), NOW, RECORDED)
    assert answer is not None and json.loads(answer.body)["id"] == "gpt-realtime"
    recorded = rest.handle(HttpRequest("GET", "/v1/models", AUTH), NOW, RECORDED)
    assert recorded is not None and json.loads(recorded.body) == {"object": "list", "data": []}


def test_which_paths_are_rest_routes() -> None:
    assert is_rest_route("/v1/realtime/client_secrets")
    assert is_rest_route("/cassettes/a/b/v1/realtime/calls/rtc_1/hangup/")
    assert is_rest_route("/v1/models/gpt-realtime")
    assert not is_rest_route("/v1/realtime")
    assert not is_rest_route("/v1/chat/completions")
