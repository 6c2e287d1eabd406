"""Sidecar files: large base64 audio kept next to a cassette instead of inside it.

A minute of 24 kHz PCM16 audio is 2.9 MB of base64; in the YAML it would bury
the conversation. When a cassette is dumped with a :class:`SidecarSink`, the
audio payload of client ``input_audio_buffer.append`` events (``audio``) and
of server ``response.output_audio.delta`` events (``delta``) longer than a
threshold is decoded and stored as raw bytes in
``<cassette dir>/<name>.sidecar/<sha256 hex, 32 digits>.bin``
(content-addressed, so repeated audio is stored once), and the YAML keeps a
reference::

    audio: {$sidecar: session.sidecar/3f2a....bin, sha256: <64 hex digits>, bytes: 48000}

Loading resolves a reference back to the exact base64 text, after checking the
size and the digest, so the in-memory cassette is the same with or without
sidecars. The key ``$sidecar`` is reserved for this inside events.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..cassette import Direction, JSONObject
from .atomic import write_atomically

__all__ = [
    "DEFAULT_THRESHOLD",
    "SIDECAR_KEY",
    "SidecarFile",
    "SidecarProblem",
    "SidecarReference",
    "SidecarSink",
    "is_reference",
    "parse_reference",
    "prune_sidecars",
    "resolve_reference",
    "sidecar_dir_name",
    "write_sidecars",
]

SIDECAR_KEY = "$sidecar"
DEFAULT_THRESHOLD = 4096
"""Payloads longer than this many base64 characters (3 KiB of audio) go to a sidecar."""

# (who sends it, event type) -> the field holding base64 audio.
_AUDIO_FIELDS: Mapping[tuple[Direction, str], str] = {
    (Direction.CLIENT, "input_audio_buffer.append"): "audio",
    (Direction.CLIENT, "session.input_audio_buffer.append"): "audio",
    (Direction.SERVER, "response.output_audio.delta"): "delta",
}
_REFERENCE_KEYS = frozenset({SIDECAR_KEY, "sha256", "bytes"})


class SidecarProblem(ValueError):
    """A sidecar reference cannot be resolved (the loader adds file and line)."""


def sidecar_dir_name(cassette: str) -> str:
    """The directory, next to the cassette file, holding the sidecars of ``cassette``."""
    return f"{cassette}.sidecar"


@dataclass(frozen=True, slots=True)
class SidecarFile:
    """One payload to store: ``path`` is relative to the cassette's directory."""

    path: str
    data: bytes
    sha256: str


class SidecarSink:
    """Collects the payloads moved out of a cassette while it is dumped.

    Args:
        name: the cassette's name (sidecars go to ``<name>.sidecar/``).
        threshold: payloads longer than this many characters are moved.
    """

    def __init__(self, name: str, threshold: int = DEFAULT_THRESHOLD) -> None:
        if threshold < 0:
            raise ValueError(f"the sidecar threshold must be zero or more, got {threshold}")
        self.name = name
        self.threshold = threshold
        self.files: dict[str, SidecarFile] = {}

    def event(self, direction: Direction, event: JSONObject) -> JSONObject:
        """Return ``event`` with its audio payload replaced by a reference, if it has one."""
        field = _AUDIO_FIELDS.get((direction, str(event.get("type"))))
        value = None if field is None else event.get(field)
        if field is None or not isinstance(value, str) or len(value) <= self.threshold:
            return event
        try:
            data = base64.b64decode(value, validate=True)
        except binascii.Error:
            return event  # not base64 after all: keep it inline, as it is
        if base64.b64encode(data).decode("ascii") != value:
            return event  # unusual padding or line breaks would not come back byte for byte
        digest = hashlib.sha256(data).hexdigest()
        path = f"{sidecar_dir_name(self.name)}/{digest[:32]}.bin"
        self.files.setdefault(path, SidecarFile(path, data, digest))
        return {**event, field: {SIDECAR_KEY: path, "sha256": digest, "bytes": len(data)}}


def is_reference(value: Mapping[str, Any]) -> bool:
    """Tell whether a JSON object in a cassette is a sidecar reference."""
    return SIDECAR_KEY in value


@dataclass(frozen=True, slots=True)
class SidecarReference:
    """A checked ``{$sidecar: PATH, sha256: HEX, bytes: N}`` reference."""

    path: str
    sha256: str
    size: int


def parse_reference(reference: Mapping[str, Any]) -> SidecarReference:
    """Check the shape of a reference (no file is read).

    Raises:
        SidecarProblem: wrong keys or types, or a path that leaves the directory.
    """
    if set(reference) != _REFERENCE_KEYS:
        raise SidecarProblem(
            f"a sidecar reference has exactly the keys {SIDECAR_KEY}, sha256 and bytes; "
            f"got {', '.join(sorted(reference))}"
        )
    where, digest, size = reference[SIDECAR_KEY], reference["sha256"], reference["bytes"]
    if not isinstance(where, str) or not isinstance(digest, str) or type(size) is not int:
        raise SidecarProblem("a sidecar reference needs a path, a sha256 string and a byte count")
    relative = PurePosixPath(where)
    if relative.is_absolute() or ".." in relative.parts or "\\" in where or not relative.parts:
        raise SidecarProblem(
            f"sidecar path {where!r} must be relative to the cassette's directory, without '..'"
        )
    return SidecarReference(where, digest.lower(), size)


def resolve_reference(reference: SidecarReference, base: Path) -> str:
    """Read the sidecar a reference names; return its bytes as base64 text.

    Args:
        reference: a reference checked by :func:`parse_reference`.
        base: the cassette's directory (the reference's path is relative to it).

    Raises:
        SidecarProblem: the file is missing, or its size or digest differs from the
            reference.
    """
    where = reference.path
    try:
        data = (base / PurePosixPath(where)).read_bytes()
    except FileNotFoundError:
        raise SidecarProblem(f"sidecar file {where!r} is missing") from None
    except OSError as exc:
        raise SidecarProblem(f"cannot read sidecar file {where!r}: {exc}") from None
    actual = hashlib.sha256(data).hexdigest()
    if len(data) != reference.size or actual != reference.sha256:
        raise SidecarProblem(
            f"sidecar file {where!r} does not match its reference: expected {reference.size} "
            f"bytes with sha256 {reference.sha256[:12]}..., found {len(data)} bytes with "
            f"sha256 {actual[:12]}... (re-record the cassette or restore the file)"
        )
    return base64.b64encode(data).decode("ascii")


def write_sidecars(directory: Path, files: Iterable[SidecarFile]) -> None:
    """Store sidecar files under ``directory`` (the cassette's), each atomically.

    A file already there with the right digest is kept as it is (content
    addressing makes that safe); a damaged one is rewritten.
    """
    for item in files:
        target = directory / item.path
        try:
            if hashlib.sha256(target.read_bytes()).hexdigest() == item.sha256:
                continue
        except FileNotFoundError:
            pass
        write_atomically(target, item.data)


def prune_sidecars(directory: Path, cassette: str, keep: Iterable[str]) -> None:
    """Delete the sidecars of ``cassette`` that are no longer referenced (after a re-record)."""
    folder = directory / sidecar_dir_name(cassette)
    if not folder.is_dir():
        return
    wanted = {PurePosixPath(path).name for path in keep}
    for path in folder.glob("*.bin"):
        if path.name not in wanted:
            path.unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()
