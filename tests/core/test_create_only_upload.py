"""Signed uploads create their object once: bytes already analysed cannot be replaced (#14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bytereview.core import LocalStorage, ObjectExistsError


def _storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(root=tmp_path, public_url="http://x", secret="s" * 32, ttl_seconds=60)


def test_a_second_upload_of_the_same_object_is_refused(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    key = "jobs/a/uploads/b/file.pdf"
    writer = storage.open_create(key)
    writer.write(b"%PDF-1.7")
    writer.close()
    with pytest.raises(ObjectExistsError):
        storage.open_create(key)
    with storage.open_read(key) as handle:
        assert handle.read() == b"%PDF-1.7"


def test_of_two_racing_uploads_one_wins_and_none_is_mixed(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    key = "jobs/a/uploads/b/file.pdf"
    first, second = storage.open_create(key), storage.open_create(key)
    first.write(b"first")
    second.write(b"second")
    first.close()
    with pytest.raises(ObjectExistsError):
        second.close()
    with storage.open_read(key) as handle:
        assert handle.read() == b"first"
    assert sorted(p.name for p in (tmp_path / "jobs/a/uploads/b").iterdir()) == ["file.pdf"]
