"""The cassette a test replays when it names none: ``<module>/<test>`` (sans-I/O).

pytest-recording's convention, so its users find their cassettes where they expect:
one directory per test module and one file per test, ``Class.test`` for a test in a
class, the parametrize id kept. Characters a cassette name cannot hold become ``-``
(see :func:`~fakeupstream.cassette.valid_name`), so the name maps to exactly one
file under the cassette directory and never outside it.
"""

from __future__ import annotations

import hashlib
import re

from .cassette import MAX_NAME_LENGTH

__all__ = ["default_cassette_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_DIGEST = 12


def default_cassette_name(module: str, test: str, cls: str | None = None) -> str:
    """The default cassette name of a test, e.g. ``test_chat/test_reply-fast``.

    Args:
        module: the test module's file stem (``test_chat``).
        test: the test's name with its parametrize id (``test_reply[fast]``).
        cls: the class the test is in, if any.

    Returns:
        A :func:`~fakeupstream.cassette.valid_name` with one ``/``. A name too long
        for a file is cut and ends with a digest of the full name, so two long
        names still differ.
    """
    stem = _part(test if cls is None else f"{cls}.{test}")
    name = f"{_part(module)}/{stem}"
    if len(name) > MAX_NAME_LENGTH:
        digest = hashlib.sha256(name.encode()).hexdigest()[:_DIGEST]
        name = f"{name[: MAX_NAME_LENGTH - _DIGEST - 1].rstrip('-.')}-{digest}"
    return name


def _part(text: str) -> str:
    part = _UNSAFE.sub("-", text).strip("-.")
    if part.endswith(".yaml"):  # the name is the file's stem: never a second suffix
        part = part[: -len(".yaml")] + "-yaml"
    return part or "test"
