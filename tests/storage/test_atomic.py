"""Atomic writes: readers see the old file or the new one; failures leave no trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakeupstream.storage.atomic import write_atomically


def test_text_and_bytes_replace_the_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "x.yaml"
    write_atomically(path, "é\n")
    assert path.read_bytes() == "é\n".encode()
    write_atomically(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.yaml"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("old")

    def broken(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("fakeupstream.storage.atomic.os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.yaml"]
