"""The JSON Schema and the loader agree on ``faults:`` (cases fed to both, as in test_schema)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .test_schema import Doc, _variant, _verdicts


def _connections(doc: Doc, faults: list[Doc]) -> None:
    doc["connections"] = [
        {"timeline": doc.pop("timeline"), "faults": faults},
        {"timeline": []},
    ]
    doc.pop("handshake")


VALID: dict[str, Callable[[Doc], object]] = {
    "every kind": lambda doc: doc.update(
        faults=[
            {"kind": "refuse", "status": 429, "seconds": 7, "reason": "slow down"},
            {"kind": "delay", "seconds": 0.5},
            {"kind": "accept_then_close", "code": 4000, "reason": "r"},
            {"kind": "close", "after": 1, "code": 4000, "reason": "custom"},
            {"kind": "reset", "after": 5},
            {"kind": "stall"},
            {"kind": "stall", "seconds": 1},
            {"kind": "drip", "rate": 100, "event": "response.create"},
            {"kind": "drop"},
            {"kind": "duplicate", "after": 0},
            {"kind": "truncate", "after": 3},
            {"kind": "error", "error": "session_expired", "code": 4001},
            {"kind": "no_pong", "event": "session.update"},
        ]
    ),
    "empty faults": lambda doc: doc.update(faults=[]),
    "faults per connection": lambda doc: _connections(doc, [{"kind": "reset", "after": 1}]),
}

INVALID: dict[str, Callable[[Doc], object]] = {
    "unknown kind": lambda doc: doc.update(faults=[{"kind": "explode"}]),
    "no kind": lambda doc: doc.update(faults=[{"after": 1}]),
    "unknown parameter": lambda doc: doc.update(faults=[{"kind": "reset", "colour": "red"}]),
    "parameter the kind does not take": lambda doc: doc.update(
        faults=[{"kind": "reset", "status": 429}]
    ),
    "two triggers": lambda doc: doc.update(
        faults=[{"kind": "reset", "after": 1, "event": "response.create"}]
    ),
    "negative after": lambda doc: doc.update(faults=[{"kind": "reset", "after": -1}]),
    "after as text": lambda doc: doc.update(faults=[{"kind": "reset", "after": "1"}]),
    "close code 5000": lambda doc: doc.update(faults=[{"kind": "close", "code": 5000}]),
    "close code 1006": lambda doc: doc.update(faults=[{"kind": "close", "code": 1006}]),
    "delay without seconds": lambda doc: doc.update(faults=[{"kind": "delay"}]),
    "drip without rate": lambda doc: doc.update(faults=[{"kind": "drip"}]),
    "unknown error": lambda doc: doc.update(faults=[{"kind": "error", "error": "boom"}]),
    "refuse status 700": lambda doc: doc.update(faults=[{"kind": "refuse", "status": 700}]),
    "refuse retry-after in fractions": lambda doc: doc.update(
        faults=[{"kind": "refuse", "seconds": 1.5}]
    ),
    "faults not a list": lambda doc: doc.update(faults={"kind": "reset"}),
    "top-level faults with connections": lambda doc: (
        _connections(doc, []),
        doc.update(faults=[]),
    ),
}


@pytest.mark.parametrize("change", VALID.values(), ids=VALID.keys())
def test_both_accept(change: Callable[[Doc], object]) -> None:
    assert _verdicts(_variant(change)) == (True, True)


@pytest.mark.parametrize("change", INVALID.values(), ids=INVALID.keys())
def test_both_reject(change: Callable[[Doc], object]) -> None:
    assert _verdicts(_variant(change)) == (False, False)
