"""Both storage backends: the local directory and GCS (against the real fake-gcs-server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bytereview.core import signing
from bytereview.core.outages import object_missing
from bytereview.core.settings import Settings
from bytereview.core.storage import (
    InvalidKeyError,
    Storage,
    check_key,
    make_storage,
)
from tests.servers import FakeGcs


@pytest.fixture(params=["local", "gcs"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
        return
    gcs: FakeGcs = request.getfixturevalue("fake_gcs")
    bucket = f"b-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    httpx.post(f"{gcs.url}/storage/v1/b", json={"name": bucket}).raise_for_status()
    yield make_storage(
        Settings(env="dev", storage_backend="gcs", gcs_bucket=bucket, gcs_endpoint=gcs.url)
    )


def test_write_read_list_delete(storage: Storage) -> None:
    payload = b"x" * (3 * 1024 * 1024 + 17)  # several chunks
    with storage.open_write("jobs/a/uploads/1") as handle:
        for start in range(0, len(payload), 1024 * 1024):
            handle.write(payload[start : start + 1024 * 1024])
    with storage.open_write("jobs/a/entries/2/0") as handle:
        handle.write(b"entry")
    with storage.open_write("jobs/b/uploads/3") as handle:
        handle.write(b"other job")
    assert storage.size("jobs/a/uploads/1") == len(payload)
    assert storage.size("jobs/a/missing") is None
    with storage.open_read("jobs/a/uploads/1") as handle:
        handle.seek(len(payload) - 17)
        assert handle.read() == b"x" * 17
    assert sorted(storage.list_keys("jobs/a/")) == ["jobs/a/entries/2/0", "jobs/a/uploads/1"]
    assert storage.delete_prefix("jobs/a/") == 2
    assert list(storage.list_keys("jobs/a/")) == []
    assert list(storage.list_keys("jobs/b/")) == ["jobs/b/uploads/3"]


def test_a_missing_object_is_told_apart_from_other_errors(storage: Storage) -> None:
    """Reading an object that is not there fails (at open or, on GCS, at the first read)
    with an error `object_missing` recognises: the extract worker fails such a task for
    good instead of retrying it."""
    with (
        pytest.raises(Exception) as missing,  # noqa: PT011 - whichever the backend raises
        storage.open_read("jobs/a/uploads/never") as handle,
    ):
        handle.read(1)
    assert object_missing(missing.value)
    assert not object_missing(ConnectionResetError("reset"))
    assert not object_missing(ValueError("other"))
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = FileNotFoundError("gone")
    assert object_missing(wrapped)


def test_upload_targets_work(storage: Storage) -> None:
    target = storage.signed_upload("jobs/a/uploads/9", content_type="application/pdf", max_bytes=10)
    assert target.method in ("PUT", "POST")
    if target.url.startswith("http://gateway.test") or "/v1/storage/objects" in target.url:
        query = dict(httpx.URL(target.url).params)
        assert signing.verify("dev-signing-secret-not-for-production", method="PUT", params=query)
        return
    httpx.request(
        target.method, target.url, content=b"%PDF-1.4", headers=target.headers
    ).raise_for_status()
    with storage.open_read("jobs/a/uploads/9") as handle:
        assert handle.read() == b"%PDF-1.4"


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a\\b", "a/./b", "dir/", "a\x00b"])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        check_key(key)


@pytest.mark.parametrize("size", [7, 9 * 1024 * 1024], ids=["small", "multi-chunk"])
def test_failed_write_leaves_nothing(storage: Storage, size: int) -> None:
    """An interrupted or aborted write never leaves a partial object under the key."""

    def interrupted_upload() -> None:
        with storage.open_write("jobs/a/uploads/1") as handle:
            handle.write(b"x" * size)
            raise RuntimeError("upload interrupted")

    with pytest.raises(RuntimeError):
        interrupted_upload()
    assert storage.size("jobs/a/uploads/1") is None
    assert list(storage.list_keys("jobs/")) == []
