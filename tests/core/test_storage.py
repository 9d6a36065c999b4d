"""Both storage backends: the local directory and GCS (against the real fake-gcs-server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bytereview.core import disposition, signing
from bytereview.core.outages import object_missing
from bytereview.core.settings import Settings
from bytereview.core.storage import (
    GcsStorage,
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


def test_a_gcs_download_url_offers_its_file_name_safely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file name comes from an upload: in a V4 signed URL it becomes the response's
    Content-Disposition, so a quote or a CR/LF in it must not reach the header raw. Signed
    offline with a service-account key made here (no Google endpoint is called)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "1",
        "private_key": pem,
        "client_email": "signer@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    (tmp_path / "account.json").write_text(json.dumps(account))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "account.json"))
    # Set by the fake-gcs-server fixture: the client would sign nothing, anonymously.
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    gcs = GcsStorage(bucket="b", project="p", endpoint="", ttl_seconds=60)
    name = 'invoice"; x=1\r\nSet-Cookie: a=b.pdf'
    url = gcs.signed_download("jobs/a/uploads/1", filename=name).url
    (header,) = parse_qs(urlsplit(url).query)["response-content-disposition"]
    assert header == disposition.attachment(name)
    assert "\r" not in header
    assert "\n" not in header
    assert header.startswith('attachment; filename="invoice__ x_1Set-Cookie_ a_b.pdf"')
