"""The bundled cassettes: format v1, faithful to the GA protocol, internally consistent.

These checks read the YAML directly (not through fakeupstream's loader) so that the
cassettes are held to the format and the protocol independently of the code that
replays them.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fakeupstream.storage.sdkcheck import (
    sdk_available,
    validate_client_event,
    validate_server_event,
)

CASSETTES = Path(__file__).parent.parent / "cassettes"
# The cassettes with a timeline; `simulated` holds only rules (tests/test_simulator.py).
FILES = sorted(path for path in CASSETTES.glob("*.yaml") if "\ntimeline:" in path.read_text())

needs_sdk = pytest.mark.skipif(not sdk_available(), reason="needs fakeupstream[sdk] (openai)")

RECORDED = {
    "at": "2026-09-18T10:15:00Z",
    "upstream": "wss://api.openai.com/v1/realtime",
    "model": "gpt-realtime",
    "fakeupstream": "0.1.0",
}
# The bundled cassettes were written by hand from public sources, never captured:
# they say so with `authored`, and carry no `recorded` (kept for what the recorder writes).
AUTHORED_KEYS = {"at", "from", "by"}
TOP_LEVEL_KEYS = {
    "version",
    "description",
    "recorded",
    "authored",
    "match",
    "handshake",
    "timeline",
}
STEP_KINDS = {"server", "client", "server_binary", "client_binary", "close"}
BOGUS_CLIENT_TYPE = "totally.bogus.event"

# The client frames each bundled cassette expects, in order (matching is by `type`).
CLIENT_SEQUENCES: dict[str, list[str]] = {
    "session": ["session.update"],
    "text_response": ["session.update", "conversation.item.create", "response.create"],
    "multi_turn": [
        "session.update",
        "conversation.item.create",
        "response.create",
        "conversation.item.create",
        "response.create",
    ],
    "conversation_item_added": ["conversation.item.create"],
    "response_cancel": [
        "session.update",
        "conversation.item.create",
        "response.create",
        "response.cancel",
    ],
    "invalid_event": [BOGUS_CLIENT_TYPE, "session.update"],
    "beta_header_rejected": ["session.update"],
    "function_call": [
        "session.update",
        "conversation.item.create",
        "response.create",
        "conversation.item.create",
        "response.create",
    ],
    "audio_roundtrip": [
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "response.create",
    ],
}

ID_PATTERNS = {
    "event": re.compile(r"event_[A-Za-z0-9]{21}"),
    "sess": re.compile(r"sess_[A-Za-z0-9]{21}"),
    "resp": re.compile(r"resp_[A-Za-z0-9]{21}"),
    "item": re.compile(r"item_[A-Za-z0-9]{21}"),
    "conv": re.compile(r"conv_[A-Za-z0-9]{21}"),
    "call": re.compile(r"call_[A-Za-z0-9]{16,24}"),
}

BETA_RULE = {
    "when": {"header": "OpenAI-Beta"},
    "respond": [
        {
            "server": {
                "type": "error",
                "event_id": "event_DAi7Rb1xw0cVn3QeZp8Ls",
                "error": {
                    "type": "invalid_request_error",
                    "code": "beta_api_shape_disabled",
                    "message": "The Realtime Beta API is no longer supported. "
                    "Please use /v1/realtime for the GA API.",
                    "param": None,
                    "event_id": None,
                },
            }
        },
        {"close": {"code": 4000, "reason": "invalid_request_error.beta_api_shape_disabled"}},
    ],
}

# Keys the SDK models do not declare but the live GA server sends. The SDK types
# `session.created` / `session.updated` sessions with its *request* model, which has no
# `id`, `object` or `expires_at`; `obfuscation` pads delta events.
ALLOWED_EXTRA_KEYS = {
    ("obfuscation",),
    ("session", "id"),
    ("session", "object"),
    ("session", "expires_at"),
}


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: top level is not a mapping"
    return data


def timeline_frames(data: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [step[kind] for step in data["timeline"] if isinstance(step.get(kind), dict)]


def all_server_frames(data: dict[str, Any]) -> list[dict[str, Any]]:
    frames = timeline_frames(data, "server")
    for rule in data.get("handshake", {}).get("rules", []):
        frames += [
            s["server"] for s in rule.get("respond", []) if isinstance(s.get("server"), dict)
        ]
    return frames


def by_name(path: Path) -> str:
    return path.stem


def test_all_bundled_cassettes_are_present() -> None:
    assert {p.stem for p in FILES} >= set(CLIENT_SEQUENCES)


@pytest.mark.parametrize("path", FILES, ids=by_name)
def test_format_v1(path: Path) -> None:
    data = load(path)
    assert set(data) <= TOP_LEVEL_KEYS, f"unknown keys {set(data) - TOP_LEVEL_KEYS}"
    assert data["version"] == 1
    description = data.get("description", "")
    assert isinstance(description, str)
    assert "\n" not in description.strip(), "the description is one line"
    assert set(data.get("recorded", {})) <= set(RECORDED)
    assert data.get("match", "type") in {"type", "subset", "exact"}
    assert set(data.get("handshake", {})) <= {"expect", "rules"}

    timeline = data["timeline"]
    assert isinstance(timeline, list)
    for n, step in enumerate(timeline):
        assert isinstance(step, dict), f"step {n} is not a mapping"
        kinds = set(step) & STEP_KINDS
        assert len(kinds) == 1, f"step {n}: exactly one of {sorted(STEP_KINDS)}, got {sorted(step)}"
        (kind,) = kinds
        allowed = {kind, "delay"} | ({"match"} if kind == "client" else set())
        assert set(step) <= allowed, f"step {n}: unknown keys {set(step) - allowed}"
        delay = step.get("delay", 0)
        assert isinstance(delay, (int, float))
        assert not isinstance(delay, bool)
        assert 0 <= delay < 5, f"step {n}: unrealistic delay {delay}"
        if "match" in step:
            assert step["match"] in {"type", "subset", "exact"}


@pytest.mark.parametrize("name", sorted(CLIENT_SEQUENCES))
def test_bundled_conventions(name: str) -> None:
    data = load(CASSETTES / f"{name}.yaml")
    assert data["description"].strip()
    assert "recorded" not in data
    authored = data["authored"]
    assert set(authored) == AUTHORED_KEYS
    assert authored["at"] == RECORDED["at"]
    assert "never captured" in authored["by"]
    assert all(isinstance(source, str) and source for source in authored["from"])
    assert data["match"] == "type"
    assert data["handshake"]["expect"] == {"path": "/v1/realtime"}
    # GA: session.created is the first frame, a few ms after the 101, with the defaults.
    first = data["timeline"][0]
    assert first["server"]["type"] == "session.created"
    assert first["delay"] < 0.05
    session = first["server"]["session"]
    assert session["model"] == "gpt-realtime-2025-08-28"
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["output_modalities"] == ["audio"]
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"


@pytest.mark.parametrize("path", FILES, ids=by_name)
def test_client_sequence(path: Path) -> None:
    if path.stem not in CLIENT_SEQUENCES:
        pytest.skip("not a bundled cassette with a pinned client sequence")
    types = [frame["type"] for frame in timeline_frames(load(path), "client")]
    assert types == CLIENT_SEQUENCES[path.stem]


@needs_sdk
@pytest.mark.parametrize("path", FILES, ids=by_name)
def test_server_frames_validate_against_the_sdk(path: Path) -> None:
    data = load(path)
    failures = [
        f"frame {n}: {reason}"
        for n, frame in enumerate(all_server_frames(data))
        if (reason := validate_server_event(frame)) is not None
    ]
    assert not failures, "\n".join(failures)


@needs_sdk
@pytest.mark.parametrize("path", FILES, ids=by_name)
def test_client_frames_validate_against_the_sdk(path: Path) -> None:
    data = load(path)
    failures = [
        f"frame {n}: {reason}"
        for n, frame in enumerate(timeline_frames(data, "client"))
        if frame.get("type") != BOGUS_CLIENT_TYPE
        and (reason := validate_client_event(frame)) is not None
    ]
    assert not failures, "\n".join(failures)


def _sdk_models(union: object) -> dict[str, Any]:
    """type tag -> SDK model class, for one of the SDK's event unions."""
    while typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    models: dict[str, Any] = {}
    for member in typing.get_args(union):
        annotation = member.model_fields["type"].annotation
        for tag in typing.get_args(annotation):
            models[tag] = member
    return models


def _extra_keys(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Paths of keys a validated SDK model kept as extras (i.e. not declared by the SDK)."""
    import pydantic

    if isinstance(value, pydantic.BaseModel):
        for key in value.model_extra or {}:
            yield (*path, key)
        for name in type(value).model_fields:
            yield from _extra_keys(getattr(value, name), (*path, name))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _extra_keys(item, (*path, n))


@needs_sdk
@pytest.mark.parametrize("path", FILES, ids=by_name)
def test_no_undeclared_keys(path: Path) -> None:
    """The SDK ignores unknown keys; this catches a misspelt field in a cassette."""
    from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent

    data = load(path)
    checks = [(_sdk_models(RealtimeServerEvent), f) for f in all_server_frames(data)]
    checks += [(_sdk_models(RealtimeClientEvent), f) for f in timeline_frames(data, "client")]
    unexpected = []
    for models, frame in checks:
        if frame["type"] == BOGUS_CLIENT_TYPE:
            continue
        model = models[frame["type"]].model_validate(frame, strict=True)
        unexpected += [
            f"{frame['type']}: {'.'.join(map(str, extra))}"
            for extra in _extra_keys(model)
            if extra not in ALLOWED_EXTRA_KEYS
        ]
    assert not unexpected, "keys the SDK does not know:\n" + "\n".join(unexpected)


class Replay:
    """Walks a timeline and checks that ids and derived values hang together."""

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        self.name = name
        self.data = data
        self.expires_at: int | None = None  # recorded.at + 1 hour, like the live server
        anchor = data.get("recorded") or data.get("authored") or {}
        if "at" in anchor:
            at = datetime.datetime.fromisoformat(anchor["at"].replace("Z", "+00:00"))
            self.expires_at = int(at.timestamp()) + 3600
        self.session_id: str | None = None
        self.conversation_id: str | None = None
        self.last_item: str | None = None  # the conversation's last item
        self.added: dict[str, dict[str, Any]] = {}  # item id -> conversation.item.added
        self.committed: str | None = None  # item id announced by input_audio_buffer.committed
        self.response_id: str | None = None  # the response in progress
        self.response_done = False
        self.output_items: dict[int, dict[str, Any]] = {}  # output_index -> item (added)
        self.finished_items: list[dict[str, Any]] = []  # response.output_item.done items
        self.streamed: dict[tuple[str, str], str] = {}  # (item id, stream) -> concatenation
        self.call_ids: set[str] = set()
        self.last_client: dict[str, Any] | None = None
        self.previous_server: str | None = None

    def check_id(self, kind: str, value: Any) -> None:
        assert isinstance(value, str)
        assert ID_PATTERNS[kind].fullmatch(value), f"bad {kind} id {value!r}"

    def run(self) -> None:
        event_ids: list[str] = []
        for frame in all_server_frames(self.data):
            self.check_id("event", frame["event_id"])
            event_ids.append(frame["event_id"])
        assert len(event_ids) == len(set(event_ids)), "duplicate server event_id"
        for n, step in enumerate(self.data["timeline"]):
            try:
                if isinstance(step.get("client"), dict):
                    self.client(step["client"])
                elif isinstance(step.get("server"), dict):
                    self.server(step["server"])
                    self.previous_server = step["server"]["type"]
            except AssertionError as exc:
                raise AssertionError(f"{self.name}: timeline step {n}: {exc}") from exc
        assert self.response_id is None, "a response was never finished with response.done"

    def client(self, frame: dict[str, Any]) -> None:
        self.last_client = frame
        item = frame.get("item", {})
        if (
            frame["type"] == "conversation.item.create"
            and item.get("type") == "function_call_output"
        ):
            assert item["call_id"] in self.call_ids, "function_call_output for an unknown call"

    def server(self, ev: dict[str, Any]) -> None:
        kind = ev["type"]
        if kind == "rate_limits.updated":
            assert self.previous_server == "response.done", (
                "rate_limits.updated follows response.done"
            )
        if self.response_id is None:
            assert "response_id" not in ev, f"{kind} outside a response"
        else:
            assert ev.get("response_id", self.response_id) == self.response_id, (
                f"{kind}.response_id {ev.get('response_id')} is not the current response "
                f"{self.response_id}"
            )
        handler = getattr(self, "on_" + kind.replace(".", "_"), None)
        if handler is not None:
            handler(ev)
        if "item_id" in ev and "output_index" in ev:
            assert ev["item_id"] == self.output_items[ev["output_index"]]["id"], (
                f"{kind}.item_id is not the item at output_index {ev['output_index']}"
            )

    # session -----------------------------------------------------------------------
    def on_session_created(self, ev: dict[str, Any]) -> None:
        session = ev["session"]
        self.check_id("sess", session["id"])
        self.session_id = session["id"]
        if self.expires_at is not None:
            assert session["expires_at"] == self.expires_at

    def on_session_updated(self, ev: dict[str, Any]) -> None:
        session = ev["session"]
        assert session["id"] == self.session_id, "session id changed in session.updated"
        if self.expires_at is not None:
            assert session["expires_at"] == self.expires_at
        assert self.last_client is not None
        assert self.last_client["type"] == "session.update"
        for key, value in self.last_client["session"].items():
            if key != "audio":
                assert session[key] == value, f"session.updated does not apply {key}"

    def on_error(self, ev: dict[str, Any]) -> None:
        assert self.last_client is not None
        assert ev["error"]["event_id"] == self.last_client.get("event_id")

    # conversation ------------------------------------------------------------------
    def on_input_audio_buffer_committed(self, ev: dict[str, Any]) -> None:
        self.check_id("item", ev["item_id"])
        assert ev["previous_item_id"] == self.last_item
        self.committed = ev["item_id"]

    def on_conversation_item_added(self, ev: dict[str, Any]) -> None:
        item = ev["item"]
        self.check_id("item", item["id"])
        assert item["id"] not in self.added, "item added twice"
        assert ev["previous_item_id"] == self.last_item, "previous_item_id does not chain"
        if self.committed is not None:
            assert item["id"] == self.committed, "committed audio item is not the one added"
            self.committed = None
        if item["type"] == "function_call":
            self.check_id("call", item["call_id"])
            self.call_ids.add(item["call_id"])
        self.added[item["id"]] = ev
        self.last_item = item["id"]

    def on_conversation_item_done(self, ev: dict[str, Any]) -> None:
        item = ev["item"]
        added = self.added[item["id"]]
        assert ev["previous_item_id"] == added["previous_item_id"]
        assert item["type"] == added["item"]["type"]
        if item["type"] == "message":
            assert item["role"] == added["item"]["role"]
        if self.response_id is not None:
            assert item["id"] in {i["id"] for i in self.output_items.values()}

    def on_conversation_item_input_audio_transcription_delta(self, ev: dict[str, Any]) -> None:
        assert ev["item_id"] in self.added
        key = (ev["item_id"], "transcription")
        self.streamed[key] = self.streamed.get(key, "") + ev["delta"]

    def on_conversation_item_input_audio_transcription_completed(self, ev: dict[str, Any]) -> None:
        assert ev["transcript"] == self.streamed.pop((ev["item_id"], "transcription"))

    # responses ---------------------------------------------------------------------
    def on_response_created(self, ev: dict[str, Any]) -> None:
        assert self.response_id is None, "response.created while another response is active"
        assert self.last_client is not None
        assert self.last_client["type"] == "response.create"
        response = ev["response"]
        self.check_id("resp", response["id"])
        self.check_id("conv", response["conversation_id"])
        if self.conversation_id is not None:
            assert response["conversation_id"] == self.conversation_id, "conversation id changed"
        self.conversation_id = response["conversation_id"]
        assert response["status"] == "in_progress"
        assert response["output"] == []
        assert response["usage"] is None
        self.response_id = response["id"]
        self.output_items = {}
        self.finished_items = []

    def on_response_output_item_added(self, ev: dict[str, Any]) -> None:
        assert ev["output_index"] == len(self.output_items)
        assert ev["item"]["status"] == "in_progress"
        self.output_items[ev["output_index"]] = ev["item"]

    def _stream(self, ev: dict[str, Any], stream: str) -> None:
        key = (ev["item_id"], stream)
        self.streamed[key] = self.streamed.get(key, "") + ev["delta"]

    def on_response_output_text_delta(self, ev: dict[str, Any]) -> None:
        self._stream(ev, "text")

    def on_response_output_audio_transcript_delta(self, ev: dict[str, Any]) -> None:
        self._stream(ev, "transcript")

    def on_response_output_audio_delta(self, ev: dict[str, Any]) -> None:
        assert base64.b64decode(ev["delta"], validate=True)

    def on_response_function_call_arguments_delta(self, ev: dict[str, Any]) -> None:
        assert ev["call_id"] == self.output_items[ev["output_index"]]["call_id"]
        self._stream(ev, "arguments")

    def on_response_output_text_done(self, ev: dict[str, Any]) -> None:
        assert ev["text"] == self.streamed[(ev["item_id"], "text")]

    def on_response_output_audio_transcript_done(self, ev: dict[str, Any]) -> None:
        assert ev["transcript"] == self.streamed[(ev["item_id"], "transcript")]

    def on_response_function_call_arguments_done(self, ev: dict[str, Any]) -> None:
        item = self.output_items[ev["output_index"]]
        assert ev["call_id"] == item["call_id"]
        assert ev["name"] == item["name"]
        assert ev["arguments"] == self.streamed[(ev["item_id"], "arguments")]
        json.loads(ev["arguments"])

    def on_response_content_part_added(self, ev: dict[str, Any]) -> None:
        assert ev["part"] in ({"type": "text", "text": ""}, {"type": "audio", "transcript": ""})

    def on_response_content_part_done(self, ev: dict[str, Any]) -> None:
        part = ev["part"]
        if part["type"] == "text":
            assert part["text"] == self.streamed[(ev["item_id"], "text")]
        else:
            assert part["transcript"] == self.streamed[(ev["item_id"], "transcript")]

    def on_response_output_item_done(self, ev: dict[str, Any]) -> None:
        item = ev["item"]
        assert item["id"] == self.output_items[ev["output_index"]]["id"]
        assert set(self.added[item["id"]]["item"]) <= set(item), "item lost fields when done"
        done = next(
            d["item"]
            for d in reversed(self._conversation_done_events())
            if d["item"]["id"] == item["id"]
        )
        assert done == item, "conversation.item.done and response.output_item.done differ"
        if item["type"] == "function_call":
            assert item["arguments"] == self.streamed[(item["id"], "arguments")]
        else:
            for part in item["content"]:
                if part["type"] == "output_text":
                    assert part["text"] == self.streamed[(item["id"], "text")]
                elif part["type"] == "output_audio":
                    assert part["transcript"] == self.streamed[(item["id"], "transcript")]
        self.finished_items.append(item)

    def _conversation_done_events(self) -> list[dict[str, Any]]:
        return [
            s["server"]
            for s in self.data["timeline"]
            if isinstance(s.get("server"), dict) and s["server"]["type"] == "conversation.item.done"
        ]

    def on_response_done(self, ev: dict[str, Any]) -> None:
        response = ev["response"]
        assert response["id"] == self.response_id
        assert response["conversation_id"] == self.conversation_id
        assert response["output"] == self.finished_items
        statuses = {item["status"] for item in response["output"]}
        if response["status"] == "completed":
            assert response["status_details"] is None
            assert statuses == {"completed"}
        elif response["status"] == "cancelled":
            assert self.last_client is not None
            assert self.last_client["type"] == "response.cancel"
            assert response["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
            assert statuses == {"incomplete"}
        check_usage(response["usage"])
        self.response_id = None


def check_usage(usage: dict[str, Any]) -> None:
    inp, out = usage["input_token_details"], usage["output_token_details"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_tokens"] == inp["text_tokens"] + inp["audio_tokens"] + inp["image_tokens"]
    assert usage["output_tokens"] == out["text_tokens"] + out["audio_tokens"]
    assert inp["cached_tokens"] == sum(inp["cached_tokens_details"].values())


@pytest.mark.parametrize("path", FILES, ids=by_name)
def test_ids_and_values_are_consistent(path: Path) -> None:
    Replay(path.stem, load(path)).run()


@pytest.mark.parametrize("path", FILES, ids=by_name)
def test_text_deltas_belong_to_the_preceding_response(path: Path) -> None:
    current = None
    for frame in timeline_frames(load(path), "server"):
        if frame["type"] == "response.created":
            current = frame["response"]["id"]
        elif frame["type"] == "response.output_text.delta":
            assert frame["response_id"] == current
            assert "obfuscation" in frame, "the live server pads text deltas"


def test_beta_header_rejected_rule() -> None:
    data = load(CASSETTES / "beta_header_rejected.yaml")
    assert data["handshake"]["rules"] == [BETA_RULE]
    assert "OpenAI-Beta" in data["description"]
    # Without the header it is a normal GA session.
    assert [f["type"] for f in timeline_frames(data, "server")] == [
        "session.created",
        "session.updated",
    ]


def test_invalid_event_error() -> None:
    data = load(CASSETTES / "invalid_event.yaml")
    bogus = timeline_frames(data, "client")[0]
    assert bogus == {"type": BOGUS_CLIENT_TYPE, "event_id": "evt_bogus_001"}
    error = timeline_frames(data, "server")[1]
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["param"] == "type"
    assert error["error"]["event_id"] == "evt_bogus_001"
    supported = re.findall(r"'([a-z_.]+)'", error["error"]["message"].split("Supported values")[1])
    assert len(supported) == 12
    assert error["error"]["message"].startswith(f"Invalid value: '{BOGUS_CLIENT_TYPE}'.")


def test_response_cancel_shape() -> None:
    frames = load(CASSETTES / "response_cancel.yaml")["timeline"]
    kinds = [("client:" if "client" in s else "") + next(iter(s.values()))["type"] for s in frames]
    cancel = kinds.index("client:response.cancel")
    assert kinds[cancel - 3 : cancel] == ["response.output_text.delta"] * 3
    assert kinds[cancel + 1 :] == [
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]


def test_audio_roundtrip_is_small_and_decodes() -> None:
    path = CASSETTES / "audio_roundtrip.yaml"
    assert path.stat().st_size < 20_000
    data = load(path)
    for frame in timeline_frames(data, "client"):
        if frame["type"] == "input_audio_buffer.append":
            pcm = base64.b64decode(frame["audio"], validate=True)
            assert 0 < len(pcm) <= 200
            assert len(pcm) % 2 == 0, "pcm16 is two bytes a sample"
    update = timeline_frames(data, "client")[0]["session"]
    updated = timeline_frames(data, "server")[1]["session"]
    assert updated["output_modalities"] == ["audio"]
    assert updated["audio"]["input"]["turn_detection"] is None
    assert (
        updated["audio"]["input"]["transcription"]["model"]
        == (update["audio"]["input"]["transcription"]["model"])
    )
