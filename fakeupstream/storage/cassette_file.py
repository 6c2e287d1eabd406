"""One cassette file: load it (sidecars resolved), render it, write it.

Writing is one pipeline used by every writer in the package: render the
cassette (YAML text plus the sidecar payloads moved out of it), then write the
sidecars, then the YAML, each atomically. A caller that must inspect what is
about to be written (the recorder's leak guard) renders first and writes after.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ..cassette import Cassette
from ..exceptions import CassetteError
from .atomic import write_atomically
from .sidecars import SidecarFile, SidecarSink, resolve_reference, write_sidecars
from .yaml_dumper import dumps_cassette
from .yaml_limits import LoadLimits
from .yaml_reader import loads_cassette, resolve_limits

__all__ = [
    "RenderedCassette",
    "dump_cassette",
    "load_cassette",
    "render_cassette",
    "write_cassette",
]


def load_cassette(path: Path | str, *, limits: LoadLimits | None = None) -> Cassette:
    """Load the cassette at ``path``; its name is the file stem.

    Sidecar references are resolved relative to the file's directory.

    Args:
        path: the file.
        limits: the most it may cost to load; by default, from the environment.

    Raises:
        CassetteError: the file cannot be read, is not a valid cassette, or is
            over a limit (checked before the file is read).
    """
    path = Path(path)
    limits = resolve_limits(limits, path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise CassetteError(
                f"the cassette is {size} bytes, more than the {limits.max_bytes} allowed; "
                "raise FAKEUPSTREAM_MAX_CASSETTE_BYTES if it is trusted",
                path=path,
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CassetteError(f"cannot read the cassette: {exc}", path=path) from None
    resolve = functools.partial(resolve_reference, base=path.parent)
    return loads_cassette(text, name=path.stem, path=path, resolve_sidecar=resolve, limits=limits)


@dataclass(frozen=True, slots=True)
class RenderedCassette:
    """A cassette as it will be written: the YAML text and its sidecar payloads."""

    text: str
    sidecars: tuple[SidecarFile, ...]


def render_cassette(
    cassette: Cassette, *, name: str, sidecar_threshold: int | None
) -> RenderedCassette:
    """Serialize ``cassette`` for the file ``<name>.yaml``.

    Args:
        cassette: what to write.
        name: the file's stem (sidecars go to ``<name>.sidecar/``).
        sidecar_threshold: audio payloads longer than this many base64 characters
            go to sidecar files; ``None`` keeps everything in the YAML.
    """
    sink = None if sidecar_threshold is None else SidecarSink(name, sidecar_threshold)
    text = dumps_cassette(cassette, sidecars=sink)
    return RenderedCassette(text, () if sink is None else tuple(sink.files.values()))


def write_cassette(path: Path, rendered: RenderedCassette) -> None:
    """Write the sidecars, then the YAML, each atomically (readers never see half)."""
    write_sidecars(path.parent, rendered.sidecars)
    write_atomically(path, rendered.text)


def dump_cassette(
    cassette: Cassette, path: Path | str, *, sidecar_threshold: int | None = None
) -> None:
    """Write ``cassette`` to ``path`` (see :func:`render_cassette` for the threshold)."""
    target = Path(path)
    write_cassette(
        target, render_cassette(cassette, name=target.stem, sidecar_threshold=sidecar_threshold)
    )
