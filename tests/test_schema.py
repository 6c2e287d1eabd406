"""The published JSON Schema of cassette format v1 agrees with the Python loader.

``fakeupstream/schema/cassette-v1.schema.json`` is for editors and non-Python tools;
the loader in :mod:`fakeupstream.storage.yaml_reader` is authoritative. Every case below is
fed to both, so the two are proven to accept and reject the same documents, except
for the few rules JSON Schema cannot express (pinned in ``LOADER_ONLY``).
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from fakeupstream.exceptions import CassetteError
from fakeupstream.storage.yaml_reader import loads_cassette

CASSETTES = Path(__file__).parent.parent / "cassettes"
FILES = sorted(CASSETTES.glob("*.yaml"))
SCHEMA_ID = "https://fakeupstream.dev/schema/cassette-v1.schema.json"

Doc = dict[str, Any]

BASE: Doc = {
    "version": 1,
    "description": "A minimal valid cassette that the cases below break one way each.",
    "recorded": {"at": "2026-09-18T10:15:00Z", "model": "gpt-realtime", "fakeupstream": "0.1.0"},
    "match": "type",
    "handshake": {
        "expect": {"path": "/v1/realtime", "query": {"model": "gpt-realtime"}},
        "rules": [
            {
                "when": {"header": "OpenAI-Beta"},
                "respond": [
                    {"server": {"type": "error", "error": {"code": "beta_api_shape_disabled"}}},
                    {"close": {"code": 4000, "reason": "invalid_request_error"}},
                ],
            }
        ],
    },
    "timeline": [
        {"server": {"type": "session.created", "session": {"type": "realtime"}}, "delay": 0.004},
        {"client": {"type": "session.update", "session": {}}, "match": "subset"},
        {"server": "raw text frame", "delay": 0},
        {"close": {"code": 1000, "reason": "bye"}},
    ],
}


def _schema() -> dict[str, Any]:
    text = resources.files("fakeupstream").joinpath("schema/cassette-v1.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


SCHEMA = _schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _variant(change: Callable[[Doc], object]) -> Doc:
    doc = copy.deepcopy(BASE)
    change(doc)
    return doc


def _rule(doc: Doc) -> Doc:
    rule: Doc = doc["handshake"]["rules"][0]
    return rule


def _refuse(doc: Doc, refuse: Doc) -> None:
    rule = _rule(doc)
    del rule["respond"]
    rule["refuse"] = refuse


EXCHANGE: Doc = {
    "request": {"method": "POST", "path": "/v1/realtime/client_secrets", "body": {"session": {}}},
    "response": {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": {"value": "ek_REDACTED", "expires_at": 1758191700},
    },
}


def _http(doc: Doc, **change: Doc) -> None:
    exchange = copy.deepcopy(EXCHANGE)
    for part, fields in change.items():
        exchange[part].update(fields)
    doc["http"] = [exchange]


def _http_only(doc: Doc) -> None:
    _http(doc)
    del doc["timeline"]


def _verdicts(doc: Doc) -> tuple[bool, bool]:
    """(schema accepts, loader accepts) for the same YAML text."""
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    schema_ok = VALIDATOR.is_valid(yaml.safe_load(text))
    try:
        loads_cassette(text, name="case")
    except CassetteError:
        loader_ok = False
    else:
        loader_ok = True
    return schema_ok, loader_ok


# -- the schema itself --------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] == SCHEMA_ID
    assert SCHEMA["title"]


def _property_schemas(node: object, where: str = "#") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{where}/properties/{name}", sub
        for key, value in node.items():
            yield from _property_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _property_schemas(value, f"{where}/{index}")


def test_every_property_is_described() -> None:
    undescribed = [
        where
        for where, sub in _property_schemas(SCHEMA)
        if not (isinstance(sub, dict) and sub.get("description"))
    ]
    assert undescribed == []


# -- the bundled cassettes ----------------------------------------------------------------


def test_bundled_cassettes_exist() -> None:
    assert FILES, f"no cassettes found in {CASSETTES}"


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_bundled_cassette_is_valid(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in VALIDATOR.iter_errors(data)
    ]
    assert errors == []


# -- the schema and the loader agree ------------------------------------------------------

VALID: dict[str, Callable[[Doc], object]] = {
    "base": lambda doc: None,
    "minimal": lambda doc: [doc.pop(key) for key in ("description", "recorded", "handshake")],
    "empty timeline": lambda doc: doc.update(timeline=[]),
    "timeline without close": lambda doc: doc["timeline"].pop(),
    "fakeupstream version as number": lambda doc: doc["recorded"].update(fakeupstream=0.1),
    "when null": lambda doc: _rule(doc).update(when=None),
    "when empty": lambda doc: _rule(doc).update(when={}),
    "when every condition": lambda doc: _rule(doc).update(
        when={
            "header": ["OpenAI-Beta", "X-Other"],
            "header_equals": {"Authorization": "Bearer sk-test"},
            "missing_header": "X-Gone",
            "query": {"model": "gpt-realtime", "n": 2},
            "missing_query": ["intent"],
            "path": "/v1/realtime",
        }
    ),
    "refuse rule": lambda doc: doc["handshake"]["rules"].append(
        {"refuse": {"status": 401, "body": {"error": None}, "headers": {"X-A": "b"}}}
    ),
    "refuse status only": lambda doc: doc["handshake"]["rules"].append({"refuse": {"status": 200}}),
    "respond close only": lambda doc: _rule(doc).update(respond=[{"close": {"code": 3000}}]),
    "respond binary and delays": lambda doc: _rule(doc).update(
        respond=[{"server_binary": "QUJD", "delay": 1}, {"close": {"code": 1014}, "delay": 0.5}]
    ),
    "binary frames": lambda doc: doc["timeline"].insert(
        0, {"client_binary": "QQ==", "match": "exact"}
    ),
    "empty binary frame": lambda doc: doc["timeline"].insert(0, {"server_binary": ""}),
    "client raw text": lambda doc: doc["timeline"].insert(0, {"client": "ping"}),
    "close codes at the edges": lambda doc: doc.update(
        timeline=[{"close": {"code": 4999, "reason": "r" * 123}}]
    ),
    "http exchange": _http,
    "http only": _http_only,
    "http text bodies": lambda doc: _http(
        doc, request={"body": "v=0\r\n"}, response={"body": "v=0\r\n"}
    ),
    "http list body and no headers": lambda doc: _http(
        doc, request={"method": "GET", "path": "/v1/models?limit=2"}, response={"body": []}
    ),
    "http null bodies": lambda doc: _http(doc, request={"body": None}, response={"body": None}),
    "http next to connections": lambda doc: (
        _http_only(doc),
        doc.pop("handshake"),
        doc.update(connections=[{"timeline": []}]),
    ),
}

INVALID: dict[str, Callable[[Doc], object]] = {
    # The cases named in the format's contract.
    "unknown top-level key": lambda doc: doc.update(extra=True),
    "step with two kinds": lambda doc: doc["timeline"][0].update(client={"type": "x"}),
    "match on a server step": lambda doc: doc["timeline"][0].update(match="exact"),
    "negative delay": lambda doc: doc["timeline"][0].update(delay=-0.5),
    "close code 1005": lambda doc: doc["timeline"][-1]["close"].update(code=1005),
    "version 2": lambda doc: doc.update(version=2),
    "rule with respond and refuse": lambda doc: _rule(doc).update(refuse={"status": 401}),
    "respond not ending with close": lambda doc: _rule(doc)["respond"].pop(),
    # More of the loader's rules.
    "missing version": lambda doc: doc.pop("version"),
    "missing timeline": lambda doc: doc.pop("timeline"),
    "version as string": lambda doc: doc.update(version="1"),
    "unknown matcher": lambda doc: doc.update(match="fuzzy"),
    "unknown recorded key": lambda doc: doc["recorded"].update(by="me"),
    "unknown handshake key": lambda doc: doc["handshake"].update(refuse={"status": 401}),
    "unknown expect key": lambda doc: doc["handshake"]["expect"].update(method="GET"),
    "boolean expected query value": lambda doc: doc["handshake"]["expect"].update(
        query={"model": True}
    ),
    "unknown when condition": lambda doc: _rule(doc).update(when={"headers": "X"}),
    "rule with neither respond nor refuse": lambda doc: _rule(doc).pop("respond"),
    "empty respond": lambda doc: _rule(doc).update(respond=[]),
    "client step in respond": lambda doc: _rule(doc)["respond"].insert(0, {"client": "hi"}),
    "two closes in respond": lambda doc: _rule(doc)["respond"].insert(0, {"close": {"code": 1000}}),
    "refuse status 101": lambda doc: _refuse(doc, {"status": 101}),
    "refuse status 600": lambda doc: _refuse(doc, {"status": 600}),
    "refuse without status": lambda doc: _refuse(doc, {"body": {}}),
    "step with no kind": lambda doc: doc["timeline"].insert(0, {"delay": 1}),
    "unknown step key": lambda doc: doc["timeline"][0].update(note="hi"),
    "server frame as number": lambda doc: doc["timeline"][0].update(server=42),
    "server frame as list": lambda doc: doc["timeline"][0].update(server=[1]),
    "bad base64": lambda doc: doc["timeline"].insert(0, {"server_binary": "QQ"}),
    "boolean delay": lambda doc: doc["timeline"][0].update(delay=True),
    "close code 1004": lambda doc: doc["timeline"][-1]["close"].update(code=1004),
    "close code 5000": lambda doc: doc["timeline"][-1]["close"].update(code=5000),
    "close without code": lambda doc: doc["timeline"][-1].update(close={"reason": "x"}),
    "unknown close key": lambda doc: doc["timeline"][-1]["close"].update(wasClean=True),
    "close reason over 123 characters": lambda doc: doc["timeline"][-1]["close"].update(
        reason="r" * 124
    ),
    "two closes in timeline": lambda doc: doc["timeline"].append({"close": {"code": 1000}}),
    "timeline not a list": lambda doc: doc.update(timeline="none"),
    "unquoted date in an event": lambda doc: doc["timeline"][0]["server"].update(
        at=datetime.date(2026, 9, 18)
    ),
    "non-string key in an event": lambda doc: doc["timeline"][0]["server"].update({1: "one"}),
    "http not a list": lambda doc: doc.update(http=EXCHANGE),
    "http without response": lambda doc: doc.update(http=[{"request": EXCHANGE["request"]}]),
    "http unknown key": lambda doc: (_http(doc), doc["http"][0].update(at=1)),
    "http lowercase method": lambda doc: _http(doc, request={"method": "post"}),
    "http relative path": lambda doc: _http(doc, request={"path": "v1/models"}),
    "http without method": lambda doc: (_http(doc), doc["http"][0]["request"].pop("method")),
    "http status 101": lambda doc: _http(doc, response={"status": 101}),
    "http status as string": lambda doc: _http(doc, response={"status": "200"}),
    "http body as number": lambda doc: _http(doc, response={"body": 3}),
    "http request headers": lambda doc: _http(doc, request={"headers": {"a": "b"}}),
}

# Rules only the loader checks: JSON Schema cannot say "last item", count bytes,
# compare keys case-insensitively or tell 1.0 from 1. Pinned so the gap stays known.
LOADER_ONLY: dict[str, Callable[[Doc], object]] = {
    "close not last in timeline": lambda doc: doc["timeline"].insert(0, doc["timeline"].pop()),
    "close not last in respond": lambda doc: _rule(doc)["respond"].reverse(),
    "close reason over 123 bytes": lambda doc: doc["timeline"][-1]["close"].update(reason="é" * 62),
    "header names repeated in another case": lambda doc: doc["handshake"]["expect"].update(
        headers={"X-A": "1", "x-a": "2"}
    ),
    "version written as 1.0": lambda doc: doc.update(version=1.0),
}


@pytest.mark.parametrize("change", VALID.values(), ids=VALID.keys())
def test_both_accept(change: Callable[[Doc], object]) -> None:
    assert _verdicts(_variant(change)) == (True, True)


@pytest.mark.parametrize("change", INVALID.values(), ids=INVALID.keys())
def test_both_reject(change: Callable[[Doc], object]) -> None:
    assert _verdicts(_variant(change)) == (False, False)


@pytest.mark.parametrize("change", LOADER_ONLY.values(), ids=LOADER_ONLY.keys())
def test_only_the_loader_rejects(change: Callable[[Doc], object]) -> None:
    assert _verdicts(_variant(change)) == (True, False)
