"""A HEAD on a page image answers the GET's status and headers without drawing the page:
the gateway in front of the real jobs service and the real ingest process, the draws
counted by the ingest service's own metric."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.gateway.test_source_pages import AUTH, client, ready_job
from tests.identity import IdentityProvider
from tests.pdfs import text_pdf
from tests.services.ingest.test_render import image_bytes

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
__all__ = ["client"]
# The headers of a drawn page that a HEAD gives too (its pixel size is known once drawn).
SHARED = ("content-type", "x-page-count", "cache-control")


def _draws() -> float:
    return sum(
        REGISTRY.get_sample_value("bytereview_ingest_page_draws_total", {"kind": kind}) or 0.0
        for kind in ("pdf", "image")
    )


async def _head(client: httpx.AsyncClient, url: str, **kwargs: object) -> httpx.Response:
    """The HEAD's answer, checked to have drawn nothing."""
    before = _draws()
    answer = await client.head(url, **kwargs)  # type: ignore[arg-type]
    assert _draws() == before, f"a HEAD drew the page: {url} {kwargs}"
    assert answer.content == b""
    return answer


async def test_a_head_on_a_page_draws_nothing(
    client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    names = await ready_job(
        client,
        {
            "doc.pdf": text_pdf(["Invoice A-1"], pages=2),
            # A TIFF's pages are not in its analysis (it says 1 for every image): the HEAD
            # counts them as a draw does.
            "scan.tiff": image_bytes((300, 400), "TIFF", frames=2),
            "photo.png": image_bytes((150, 100), "PNG"),
        },
    )
    for name, page in (("doc.pdf", 2), ("scan.tiff", 2), ("photo.png", 1)):
        url = f"/v1/{names[name]}:renderPage"
        params = {"page": page, "width": 400}
        head = await _head(client, url, headers=AUTH, params=params)
        assert head.status_code == 200, (name, head.status_code)
        before = _draws()
        get = await client.get(url, headers=AUTH, params=params)
        assert get.status_code == 200, get.text
        assert _draws() == before + 1  # the GET draws it, as before
        assert get.content
        assert {h: head.headers.get(h) for h in SHARED} == {h: get.headers.get(h) for h in SHARED}
        assert head.headers["content-type"] == "image/png"
        assert head.headers["x-page-count"] == ("1" if name == "photo.png" else "2")

    # What the GET refuses, the HEAD refuses with the same status, nothing drawn: a page past
    # the end, another user's file, a file that does not exist, a width out of range.
    mallory = {"Authorization": f"Bearer {idp.token('mallory')}"}
    job = names["job"]
    cases: list[tuple[str, dict[str, str], dict[str, int]]] = [
        (names["doc.pdf"], AUTH, {"page": 3}),
        (names["scan.tiff"], AUTH, {"page": 3}),
        (names["photo.png"], AUTH, {"page": 2}),
        (names["doc.pdf"], mallory, {"page": 1}),
        (f"{job}/files/0123456789abcdef0123456789abcdef", AUTH, {"page": 1}),
        (names["doc.pdf"], AUTH, {"width": 10}),
    ]
    for file, headers, params in cases:
        url = f"/v1/{file}:renderPage"
        head = await _head(client, url, headers=headers, params=params)
        get = await client.get(url, headers=headers, params=params)
        assert head.status_code == get.status_code, (file, params, get.text)
        assert get.status_code in (400, 404), (file, params, get.text)
        assert head.headers["content-type"] == get.headers["content-type"] == "application/json"
