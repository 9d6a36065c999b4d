"""Object storage: a local directory (dev) or Google Cloud Storage (production).

The API is synchronous and file-like because archive unpacking needs seekable
readers; async callers run it with `asyncio.to_thread`.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast
from urllib.parse import quote

from bytereview.core import disposition, signing
from bytereview.core.settings import Settings, StorageBackend


class InvalidKeyError(ValueError):
    """A storage key that could escape its prefix or the storage root."""


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative object key, else raise InvalidKeyError."""
    if not key or len(key) > 1024 or "\\" in key or "\x00" in key or key.startswith("/"):
        raise InvalidKeyError(f"invalid storage key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKeyError(f"invalid storage key {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class SignedRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    expire_time: dt.datetime | None = None


class Storage(Protocol):
    def open_read(self, key: str) -> BinaryIO: ...
    def open_write(self, key: str, content_type: str = "application/octet-stream") -> BinaryIO: ...
    def size(self, key: str) -> int | None: ...
    def modified_time(self, key: str) -> dt.datetime | None: ...
    def list_keys(self, prefix: str) -> Iterator[str]: ...
    def delete(self, key: str) -> bool: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def signed_upload(self, key: str, *, content_type: str, max_bytes: int) -> SignedRequest: ...
    def signed_download(self, key: str, *, filename: str) -> SignedRequest: ...


class LocalStorage:
    """Objects as files under one root directory; URLs are HMAC-signed gateway routes."""

    def __init__(self, *, root: Path, public_url: str, secret: str, ttl_seconds: int) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._public_url = public_url.rstrip("/")
        self._secret = secret
        self._ttl = ttl_seconds

    def path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        # Belt and braces: check_key forbids '..', and symlinks must not lead out either.
        if not path.is_relative_to(self.root):
            raise InvalidKeyError(f"storage key {key!r} leaves the storage root")
        return path

    def open_read(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def open_write(self, key: str, content_type: str = "application/octet-stream") -> BinaryIO:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return cast(BinaryIO, _AtomicWriter(path))

    def open_create(self, key: str) -> _CreateOnlyWriter:
        """A writer for an object that must not exist yet (signed uploads: one per URL)."""
        path = self.path(key)
        if path.exists():
            raise ObjectExistsError(f"{key} was already uploaded")
        path.parent.mkdir(parents=True, exist_ok=True)
        return _CreateOnlyWriter(path)

    def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def modified_time(self, key: str) -> dt.datetime | None:
        try:
            return dt.datetime.fromtimestamp(self.path(key).stat().st_mtime, dt.UTC)
        except FileNotFoundError:
            return None

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix if prefix else self.root
        start = base if base.is_dir() else base.parent
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if name.endswith(".partial"):
                    continue
                key = (Path(dirpath) / name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def delete(self, key: str) -> bool:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        check_key(prefix.rstrip("/"))
        keys = list(self.list_keys(prefix))
        for key in keys:
            self.delete(key)
        target = self.root / prefix.rstrip("/")
        if prefix.endswith("/") and target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        return len(keys)

    def _signed(self, method: str, route: str, key: str, **extra: str) -> SignedRequest:
        expires = int(dt.datetime.now(dt.UTC).timestamp()) + self._ttl
        params = signing.sign(self._secret, method=method, key=key, expires=expires, **extra)
        url = f"{self._public_url}{route}?{signing.encode_query(params)}"
        return SignedRequest(method, url, {}, dt.datetime.fromtimestamp(expires, dt.UTC))

    def signed_upload(self, key: str, *, content_type: str, max_bytes: int) -> SignedRequest:
        return self._signed("PUT", "/v1/storage/objects", check_key(key), max=str(max_bytes))

    def signed_download(self, key: str, *, filename: str) -> SignedRequest:
        return self._signed("GET", "/v1/storage/objects", check_key(key), filename=filename)


class _AtomicWriter:
    """Writes to `<path>.partial` and renames on close, so readers never see half a file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._tmp = path.with_name(path.name + ".partial")
        self._file = self._tmp.open("wb")
        self.closed = False

    def write(self, data: bytes) -> int:
        return self._file.write(data)

    def abort(self) -> None:
        if not self.closed:
            self._file.close()
            self._tmp.unlink(missing_ok=True)
            self.closed = True

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            self._tmp.replace(self._path)
            self.closed = True

    def __enter__(self) -> _AtomicWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ObjectExistsError(FileExistsError):
    """A create-only write found the object already there."""


class _CreateOnlyWriter(_AtomicWriter):
    """Like _AtomicWriter, but the object is created once and never replaced.

    The final step is a hard link, which fails if the name exists: two racing uploads cannot
    both win, and bytes already analysed cannot be swapped under the job (#14). Each writer
    has its own temporary file, so racing uploads never write into one another."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._tmp = path.with_name(f"{path.name}.{secrets.token_hex(8)}.partial")
        self._file = self._tmp.open("wb")
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            self.closed = True
            try:
                os.link(self._tmp, self._path)
            except FileExistsError as exc:
                raise ObjectExistsError(f"{self._path.name} was already uploaded") from exc
            finally:
                self._tmp.unlink(missing_ok=True)


class GcsStorage:
    """Objects in a Google Cloud Storage bucket; V4 signed URLs for browsers."""

    def __init__(self, *, bucket: str, project: str, endpoint: str, ttl_seconds: int) -> None:
        from google.cloud import storage as gcs

        if endpoint:
            # An emulator (fake-gcs-server): anonymous, with the endpoint overridden.
            from google.auth.credentials import AnonymousCredentials

            client = gcs.Client(
                project=project,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": endpoint},
            )
        else:
            client = gcs.Client(project=project)
        self._client: Any = client
        self._bucket: Any = client.bucket(bucket)
        self._bucket_name = bucket
        self._endpoint = endpoint.rstrip("/")
        self._ttl = ttl_seconds

    def open_read(self, key: str) -> BinaryIO:
        reader: BinaryIO = self._bucket.blob(check_key(key)).open("rb", chunk_size=4 * 1024**2)
        return reader

    def open_write(self, key: str, content_type: str = "application/octet-stream") -> BinaryIO:
        blob = self._bucket.blob(check_key(key), chunk_size=8 * 1024**2)
        writer: BinaryIO = blob.open("wb", content_type=content_type, ignore_flush=True)
        return writer

    def size(self, key: str) -> int | None:
        blob = self._bucket.get_blob(check_key(key))
        return None if blob is None else int(blob.size)

    def modified_time(self, key: str) -> dt.datetime | None:
        blob = self._bucket.get_blob(check_key(key))
        if blob is None or blob.updated is None:
            return None
        updated: dt.datetime = blob.updated
        return updated

    def list_keys(self, prefix: str) -> Iterator[str]:
        for blob in self._client.list_blobs(self._bucket, prefix=prefix):
            yield str(blob.name)

    def delete(self, key: str) -> bool:
        from google.api_core.exceptions import NotFound

        try:
            self._bucket.blob(check_key(key)).delete()
        except NotFound:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        check_key(prefix.rstrip("/"))
        return sum(1 for key in list(self.list_keys(prefix)) if self.delete(key))

    def signed_upload(self, key: str, *, content_type: str, max_bytes: int) -> SignedRequest:
        if self._endpoint:
            # Emulators cannot check V4 signatures (and anonymous credentials cannot make
            # them): hand out the emulator's plain media-upload URL instead.
            url = (
                f"{self._endpoint}/upload/storage/v1/b/{self._bucket_name}/o"
                f"?uploadType=media&name={quote(check_key(key), safe='')}"
            )
            return SignedRequest("POST", url, {"Content-Type": content_type}, _expiry(self._ttl))
        blob = self._bucket.blob(check_key(key))
        # Create-only (generation 0): once the bytes are there (and then analysed), the URL
        # cannot replace them for the rest of its hour.
        signed = {
            "x-goog-content-length-range": f"0,{max_bytes}",
            "x-goog-if-generation-match": "0",
        }
        headers = {"Content-Type": content_type, **signed}
        url = blob.generate_signed_url(
            version="v4",
            expiration=dt.timedelta(seconds=self._ttl),
            method="PUT",
            content_type=content_type,
            headers=signed,
        )
        return SignedRequest("PUT", str(url), headers, _expiry(self._ttl))

    def signed_download(self, key: str, *, filename: str) -> SignedRequest:
        if self._endpoint:
            url = (
                f"{self._endpoint}/storage/v1/b/{self._bucket_name}/o/"
                f"{quote(check_key(key), safe='')}?alt=media"
            )
            return SignedRequest("GET", url, {}, _expiry(self._ttl))
        blob = self._bucket.blob(check_key(key))
        url = blob.generate_signed_url(
            version="v4",
            expiration=dt.timedelta(seconds=self._ttl),
            method="GET",
            # The name comes from the upload: quotes, CR/LF and non-ASCII made safe.
            response_disposition=disposition.attachment(filename),
        )
        return SignedRequest("GET", str(url), {}, _expiry(self._ttl))


def _expiry(ttl: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)


def make_storage(settings: Settings) -> Storage:
    """The storage backend the settings name."""
    if settings.storage_backend is StorageBackend.GCS:
        return GcsStorage(
            bucket=settings.gcs_bucket,
            project=settings.gcs_project,
            endpoint=settings.gcs_endpoint,
            ttl_seconds=settings.upload_url_ttl_seconds,
        )
    assert settings.storage_dir is not None
    return LocalStorage(
        root=settings.storage_dir,
        public_url=settings.public_url,
        secret=settings.secret("signing_secret"),
        ttl_seconds=settings.upload_url_ttl_seconds,
    )
