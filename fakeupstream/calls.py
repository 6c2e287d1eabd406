"""WebRTC and SIP calls as the REST side sees them (sans-I/O).

``POST /v1/realtime/calls`` takes an SDP offer, either as the raw body
(``Content-Type: application/sdp``) or as the ``sdp`` part of a
``multipart/form-data`` body next to a ``session`` part, and answers ``201 Created``
with an SDP answer and a ``Location`` naming the call (``rtc_...``). The fake carries
no media: the answer mirrors the offer's media sections so WebRTC stacks parse it,
and the call's events come over the sideband WebSocket
(``/v1/realtime?call_id=rtc_...``), replayed from the cassette like any session.
``/calls/{id}/accept|reject|refer|hangup`` answer 200 for a call this server made
and 404 otherwise.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import Callable

from .cassette import JSONObject
from .http_request import HttpRequest
from .responses import HttpResponse, error_response

__all__ = ["CALL_PREFIX", "Calls", "sdp_answer"]

CALL_PREFIX = "rtc_"
_ACTIONS = ("accept", "reject", "refer", "hangup")


class Calls:
    """The calls one server has created.

    Args:
        new_call_id: returns a fresh id body (letters and digits) for each call.
    """

    def __init__(self, new_call_id: Callable[[], str]) -> None:
        self._new_call_id = new_call_id
        self.sessions: dict[str, JSONObject] = {}
        """The session config each call was created with, by call id."""

    def create(self, request: HttpRequest) -> HttpResponse:
        """Answer ``POST /v1/realtime/calls``."""
        offer, session = _offer_and_session(request)
        if isinstance(offer, HttpResponse):
            return offer
        if not offer.lstrip().startswith("v=0"):
            return error_response(
                400, "Invalid SDP offer: it must start with 'v=0'.", "invalid_offer", param="sdp"
            )
        call_id = CALL_PREFIX + self._new_call_id()
        self.sessions[call_id] = session
        return HttpResponse(
            201,
            sdp_answer(offer, call_id).encode(),
            (
                ("Content-Type", "application/sdp"),
                ("Location", f"/v1/realtime/calls/{call_id}"),
            ),
        )

    def control(self, call_id: str, action: str) -> HttpResponse:
        """Answer ``POST /v1/realtime/calls/{call_id}/{action}``."""
        if action not in _ACTIONS:
            return error_response(
                404, f"Invalid URL (POST /v1/realtime/calls/{call_id}/{action})", "not_found"
            )
        if call_id not in self.sessions:
            return error_response(
                404, f"Call '{call_id}' not found.", "call_not_found", param="call_id"
            )
        if action in ("reject", "hangup"):
            del self.sessions[call_id]
        return HttpResponse(200, b"")


def sdp_answer(offer: str, call_id: str) -> str:
    """An SDP answer for ``offer``: one section per offered media, accepting it, no media.

    Each ``m=`` line keeps its media type and formats; ``mid`` values are kept so the
    offerer's BUNDLE group matches.
    """
    media: list[list[str]] = []
    for raw in offer.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if line.startswith("m="):
            fields = line[2:].split(" ")  # media, port, protocol, formats...
            protocol = fields[2] if len(fields) > 2 else "UDP/TLS/RTP/SAVPF"
            media.append([" ".join([f"m={fields[0]}", "9", protocol, *fields[3:]])])
        elif media and line.startswith(("a=mid:", "a=rtpmap:", "a=sctp-port:")):
            media[-1].append(line)
    session_id = sum(ord(c) for c in call_id)
    lines = [
        "v=0",
        f"o=- {session_id} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
    ]
    mids = [
        line.removeprefix("a=mid:")
        for section in media
        for line in section
        if line.startswith("a=mid:")
    ]
    if mids:
        lines.append("a=group:BUNDLE " + " ".join(mids))
    for section in media:
        lines.extend(
            [
                section[0],
                "c=IN IP4 127.0.0.1",
                *section[1:],
                "a=sendrecv",
                "a=setup:active",
                "a=ice-ufrag:fake",
                "a=ice-pwd:fakeupstreamfakeupstream",
            ]
        )
    return "\r\n".join(lines) + "\r\n"


def _offer_and_session(request: HttpRequest) -> tuple[str | HttpResponse, JSONObject]:
    content_type = request.header("Content-Type") or ""
    if content_type.lower().startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + request.body
        )
        parts = {
            part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()
        }
        sdp, session = parts.get("sdp"), parts.get("session")
        if not isinstance(sdp, bytes):
            return _missing_sdp(), {}
        try:
            config = json.loads(session) if isinstance(session, bytes) else {}
        except ValueError:
            config = None
        if not isinstance(config, dict):
            return (
                error_response(
                    400,
                    "Invalid 'session': expected a JSON object.",
                    "invalid_type",
                    param="session",
                ),
                {},
            )
        return sdp.decode("utf-8", "replace"), config
    if not request.body.strip():
        return _missing_sdp(), {}
    return request.body.decode("utf-8", "replace"), {}


def _missing_sdp() -> HttpResponse:
    return error_response(
        400, "Missing required parameter: 'sdp'.", "missing_required_parameter", param="sdp"
    )
