"""A small REST client of the gateway, for the command line: JSON in, JSON out, clear errors."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from bytereview.core import DEV_TOKEN

DEFAULT_URL = "http://127.0.0.1:8080"
CHUNK = 1024 * 1024


class ClientError(Exception):
    """Something the user can act on; the message says what."""


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(body)[:300]


def url_of_local_platform() -> str:
    """The URL `bytereview up` wrote in its data dir (BYTEREVIEW_DATA_DIR, else .bytereview).

    `up` may have moved off the default port; without this the CLI would talk to whatever
    else listens there."""
    data_dir = Path(os.environ.get("BYTEREVIEW_DATA_DIR") or ".bytereview")
    try:
        url = (data_dir / "url").read_text().strip()
    except OSError:
        return ""
    return url if url.startswith(("http://", "https://")) else ""


class Api:
    def __init__(self, url: str, *, token: str = "", api_key: str = "") -> None:
        headers = {"x-api-key": api_key} if api_key else {"authorization": f"Bearer {token}"}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=60.0)

    @classmethod
    def from_env(cls, url: str | None, token: str | None, api_key: str | None) -> Api:
        """Flags first, then BYTEREVIEW_URL / _TOKEN / _API_KEY; the dev token last."""
        url = url or os.environ.get("BYTEREVIEW_URL") or url_of_local_platform() or DEFAULT_URL
        if token and not api_key:
            # A --token given on the command line wins over BYTEREVIEW_API_KEY in the
            # environment (an API key is sent in preference to a token otherwise).
            return cls(url, token=token)
        return cls(
            url,
            token=token or os.environ.get("BYTEREVIEW_TOKEN", DEV_TOKEN),
            api_key=api_key or os.environ.get("BYTEREVIEW_API_KEY", ""),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        try:
            response = self._http.request(
                method, path, json=body, params={k: v for k, v in params.items() if v}
            )
        except httpx.TransportError as exc:
            raise ClientError(
                f"cannot reach ByteReview at {self.url} ({type(exc).__name__}); is it running? "
                "(`make up`, or set --url / BYTEREVIEW_URL)"
            ) from exc
        self._check(response)
        return response.json() if response.content else {}

    def _check(self, response: httpx.Response) -> None:
        if response.status_code == 401:
            raise ClientError(
                f"the server refused the credentials: {_reason(response)} "
                "(set --token / BYTEREVIEW_TOKEN or --api-key / BYTEREVIEW_API_KEY)"
            )
        if response.status_code == 403:
            raise ClientError(f"not allowed: {_reason(response)}")
        if response.status_code >= 400:
            raise ClientError(f"{response.status_code}: {_reason(response)}")

    def upload(self, target: dict[str, Any], path: Path, progress: Callable[[int], None]) -> None:
        """PUT the file to its signed URL (the gateway's or the bucket's), streamed."""

        def chunks(handle: BinaryIO) -> Iterator[bytes]:
            while chunk := handle.read(CHUNK):
                progress(len(chunk))
                yield chunk

        headers = dict(target.get("headers", {}))
        headers["content-length"] = str(path.stat().st_size)
        with path.open("rb") as handle:
            try:
                # A fresh client: signed URLs carry their own authorisation.
                response = httpx.request(
                    target.get("method", "PUT"),
                    target["url"],
                    content=chunks(handle),
                    headers=headers,
                    timeout=300.0,
                )
            except httpx.TransportError as exc:
                raise ClientError(f"upload of {path} failed: {exc}") from exc
        if response.status_code >= 400:
            raise ClientError(f"upload of {path} refused: {_reason(response)}")

    def download(self, path: str, out: Path, **params: Any) -> int:
        written = 0
        try:
            with self._http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                with out.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
                        written += len(chunk)
        except httpx.TransportError as exc:
            raise ClientError(f"download of {out} failed: {exc}") from exc
        except OSError as exc:
            raise ClientError(f"cannot write {out}: {exc.strerror or exc}") from exc
        return written
