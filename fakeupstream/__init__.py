"""fakeupstream: a record-replay harness and fake upstream for the OpenAI Realtime API.

The names below are the public API; everything else is private and may change.
"""

from ._version import __version__
from .access import AccessPolicy
from .cassette import (
    Authored,
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
    FaultError,
    MismatchError,
    RecordError,
    ReplayFailure,
    SecretLeakError,
    UnplayedError,
)
from .faults import ErrorKind, Fault, FaultKind, build_fault
from .recordmode import RecordMode
from .replay import ReplaySession
from .report import ConnectionReport, Mismatch, Unplayed, UpgradeSeen
from .rules import Rule
from .serve.record_relay import RecordingConfig
from .serve.server import FakeUpstream
from .serve.threaded import ThreadedFakeUpstream
from .serve.tls import ServerCertificate
from .storage.cassette_file import load_cassette
from .storage.library import CassetteLibrary, bundled_cassette_dir
from .storage.yaml_dumper import dumps_cassette
from .storage.yaml_reader import loads_cassette
from .unexpected import OnUnexpected

__all__ = [
    "AccessPolicy",
    "Authored",
    "Cassette",
    "CassetteError",
    "CassetteLibrary",
    "CassetteNotFound",
    "CloseStep",
    "Condition",
    "ConnectionReport",
    "Direction",
    "ErrorKind",
    "Expectation",
    "FakeUpstream",
    "FakeUpstreamError",
    "Fault",
    "FaultError",
    "FaultKind",
    "FrameStep",
    "Handshake",
    "HandshakeRule",
    "MatchMode",
    "Mismatch",
    "MismatchError",
    "OnUnexpected",
    "RecordError",
    "RecordMode",
    "Recorded",
    "RecordingConfig",
    "Refusal",
    "ReplayFailure",
    "ReplaySession",
    "Rule",
    "SecretLeakError",
    "ServerCertificate",
    "ThreadedFakeUpstream",
    "Unplayed",
    "UnplayedError",
    "UpgradeSeen",
    "__version__",
    "build_fault",
    "bundled_cassette_dir",
    "dumps_cassette",
    "load_cassette",
    "loads_cassette",
]
