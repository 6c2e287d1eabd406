"""fakeupstream: a record-replay harness and fake upstream for the OpenAI Realtime API.

The names below are the public API; everything else is private and may change.
"""

from ._version import __version__
from .access import AccessPolicy
from .cassette import (
    Cassette,
    CloseStep,
    Condition,
    Direction,
    Expectation,
    FrameStep,
    Handshake,
    HandshakeRule,
    MatchMode,
    Recorded,
    Refusal,
)
from .exceptions import (
    CassetteError,
    CassetteNotFound,
    FakeUpstreamError,
    MismatchError,
    RecordError,
    ReplayFailure,
    SecretLeakError,
    UnplayedError,
)
from .recordmode import RecordMode
from .replay import ReplaySession
from .report import ConnectionReport, Mismatch, Unplayed
from .serve.record_relay import RecordingConfig
from .serve.server import FakeUpstream
from .serve.threaded import ThreadedFakeUpstream
from .storage.cassette_file import load_cassette
from .storage.library import CassetteLibrary, bundled_cassette_dir
from .storage.yaml_dumper import dumps_cassette
from .storage.yaml_reader import loads_cassette

__all__ = [
    "AccessPolicy",
    "Cassette",
    "CassetteError",
    "CassetteLibrary",
    "CassetteNotFound",
    "CloseStep",
    "Condition",
    "ConnectionReport",
    "Direction",
    "Expectation",
    "FakeUpstream",
    "FakeUpstreamError",
    "FrameStep",
    "Handshake",
    "HandshakeRule",
    "MatchMode",
    "Mismatch",
    "MismatchError",
    "RecordError",
    "RecordMode",
    "Recorded",
    "RecordingConfig",
    "Refusal",
    "ReplayFailure",
    "ReplaySession",
    "SecretLeakError",
    "ThreadedFakeUpstream",
    "Unplayed",
    "UnplayedError",
    "__version__",
    "bundled_cassette_dir",
    "dumps_cassette",
    "load_cassette",
    "loads_cassette",
]
