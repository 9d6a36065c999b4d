"""Folder rules, the task plan and source pages over REST: the gateway in front of the real
jobs service and the real ingest process (its workers analyse the files, its server draws
the pages)."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from bytereview.core import Settings
from bytereview.core.settings import DEV_TOKEN
from gateway import create_app
from services.ingest import serve
from services.jobs.server import RunningJobsService
from tests.identity import IdentityProvider
from tests.pdfs import text_pdf

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


@pytest.fixture
async def client(settings: Settings, jobs: RunningJobsService) -> AsyncIterator[httpx.AsyncClient]:
    cfg = settings.model_copy(
        update={"jobs_addr": f"127.0.0.1:{jobs.port}", "ingest_addr": "127.0.0.1:0"}
    )
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    ingest = asyncio.create_task(serve(cfg, stop, listening=port.set_result))
    ingest_addr = f"127.0.0.1:{await asyncio.wait_for(port, timeout=30)}"
    app: FastAPI = create_app(cfg.model_copy(update={"ingest_addr": ingest_addr}))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
                yield c
    finally:
        stop.set()
        await asyncio.wait_for(ingest, timeout=30)


async def ready_job(
    client: httpx.AsyncClient, files: dict[str, bytes], headers: dict[str, str] = AUTH
) -> dict[str, str]:
    """path -> file name of a job holding `files`, uploaded through the gateway and analysed."""
    created = await client.post(
        "/v1/jobs",
        headers=headers,
        json={"files": [{"path": p, "sizeBytes": len(b)} for p, b in files.items()]},
    )
    assert created.status_code == 200, created.text
    body = created.json()
    for target in body["uploadTargets"]:
        put = await client.put(target["url"], content=files[target["path"]])
        assert put.status_code == 200, put.text
    job = body["job"]["name"]
    await client.post(f"/v1/{job}:finalizeUploads", headers=headers, json={})
    deadline = time.monotonic() + 60
    while (await client.get(f"/v1/{job}", headers=headers)).json()["status"] != "READY":
        assert time.monotonic() < deadline, "analysis did not finish"
        await asyncio.sleep(0.2)
    return {"job": job} | {t["path"]: t["file"] for t in body["uploadTargets"]}


async def test_rules_and_plan_over_rest(client: httpx.AsyncClient) -> None:
    pdf = text_pdf(["Total: 1.00"])
    names = await ready_job(client, {"a.pdf": pdf, "b/x.pdf": pdf, "b/y.pdf": pdf})
    job = names["job"]
    rules = [{"folder": "b", "taskMode": "TASK_MODE_COMBINED"}]
    plan = await client.post(
        f"/v1/{job}:planTasks",
        headers=AUTH,
        json={"taskMode": "TASK_MODE_INDIVIDUAL", "folderRules": rules},
    )
    assert plan.status_code == 200, plan.text
    assert plan.json() == {
        "taskCount": 2,
        "fileCount": 3,
        "folders": [
            # The top level: an empty folder, left out of the JSON as proto3 defaults are.
            {"taskMode": "TASK_MODE_INDIVIDUAL", "fileCount": 1, "taskCount": 1},
            {"folder": "b", "taskMode": "TASK_MODE_COMBINED", "fileCount": 2, "taskCount": 1},
        ],
    }
    fields = [{"name": "total", "dataType": "currency"}]
    configured = await client.post(
        f"/v1/{job}:configure", headers=AUTH, json={"fields": fields, "folderRules": rules}
    )
    assert configured.json()["folderRules"] == rules
    for body in (
        {"fields": fields, "folderRules": [{"folder": "c", "taskMode": "TASK_MODE_COMBINED"}]},
        {"fields": fields, "folderRules": [{"folder": "b", "taskMode": "SOMETIMES"}]},
    ):
        refused = await client.post(f"/v1/{job}:configure", headers=AUTH, json=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"
    # A prompt of that name does not exist: not found, as a template would be.
    prompt: dict[str, object] = {"fields": fields, "systemPrompt": "systemPrompts/" + "f" * 32}
    missing = await client.post(f"/v1/{job}:configure", headers=AUTH, json=prompt)
    assert missing.status_code == 404, missing.text


async def test_pages_come_as_pngs_of_known_size_to_their_owner_only(
    client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    names = await ready_job(client, {"doc.pdf": text_pdf(["Invoice A-1"], pages=2)})
    url = f"/v1/{names['doc.pdf']}:renderPage"
    page = await client.get(url, headers=AUTH, params={"page": 2, "width": 400})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "image/png"
    assert page.headers["x-image-width"] == "400"
    assert page.headers["x-page-count"] == "2"
    assert page.headers["cache-control"].startswith("private")
    image = Image.open(io.BytesIO(page.content))
    assert image.size == (400, int(page.headers["x-image-height"]))

    other = {"Authorization": f"Bearer {idp.token('mallory')}"}
    for page_number in (1, 2):
        stolen = await client.get(url, headers=other, params={"page": page_number})
        assert stolen.status_code == 404, stolen.text
        assert stolen.headers["content-type"] == "application/json"
    bad_params: list[dict[str, str | int]] = [{"width": 10}, {"page": "two"}, {"page": -1}]
    for bad_page in bad_params:
        bad = await client.get(url, headers=AUTH, params=bad_page)
        assert bad.status_code == 400, (bad_page, bad.text)
    # A page the document does not have is not there (404), like another user's: the request
    # is well formed, which the OpenAPI document says it is (it was a 400).
    missing = await client.get(url, headers=AUTH, params={"page": 3})
    assert missing.status_code == 404, missing.text
    assert "the document has 2 page(s)" in missing.json()["error"]["message"]
    # The ranges the server takes are the document's (page and width were plain int32s).
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/jobs/{job}/files/{file}:renderPage"]["get"]
    declared = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert declared["page"]["minimum"] == 0
    assert declared["width"]["anyOf"] == [{"enum": [0]}, {"minimum": 100, "maximum": 2400}]


async def test_one_users_burst_of_draws_does_not_queue_ahead_of_others(
    client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    # 60 draws at once from one user all queued on the ingest process's threads (200 of
    # them held another user's draw up for 44 s); now a user has RENDERS_PER_USER in flight
    # and the rest are 429 at once.
    pdf = text_pdf(["Invoice A-1"])
    mine = await ready_job(client, {"doc.pdf": pdf})
    alice = {"Authorization": f"Bearer {idp.token('alice')}"}
    theirs = await ready_job(client, {"doc.pdf": pdf}, headers=alice)

    async def draw(name: str, headers: dict[str, str]) -> httpx.Response:
        return await client.get(f"/v1/{name}:renderPage", headers=headers, params={"width": 2400})

    burst = [asyncio.create_task(draw(mine["doc.pdf"], AUTH)) for _ in range(60)]
    await asyncio.sleep(0.2)
    other = await draw(theirs["doc.pdf"], alice)
    answers = await asyncio.gather(*burst)
    assert other.status_code == 200, other.text
    statuses = sorted({a.status_code for a in answers})
    assert statuses == [200, 429], statuses
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "at once per user" in refused.json()["error"]["message"]
    # The slots are given back: the same user draws again.
    assert (await draw(mine["doc.pdf"], AUTH)).status_code == 200


async def test_one_users_burst_of_listings_is_refused_with_429_not_queued(
    client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    # Archives uploaded and not analysed: InspectArchive reads each one's directory to tell
    # what it is, then builds its listing; a user has one of those going at a time.
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for i in range(3000):
            archive.writestr(f"{i}/" + "\U0001f600" * 200 + ".png", b"")
    big = out.getvalue()

    async def uploaded(files: dict[str, bytes], headers: dict[str, str]) -> list[str]:
        created = await client.post(
            "/v1/jobs",
            headers=headers,
            json={"files": [{"path": p, "sizeBytes": len(b)} for p, b in files.items()]},
        )
        assert created.status_code == 200, created.text
        for target in created.json()["uploadTargets"]:
            put = await client.put(target["url"], content=files[target["path"]])
            assert put.status_code == 200, put.text
        return [t["file"] for t in created.json()["uploadTargets"]]

    mine = await uploaded({f"{n}.zip": big for n in range(8)}, AUTH)
    alice = {"Authorization": f"Bearer {idp.token('alice')}"}
    [theirs] = await uploaded({"a.zip": _small_zip()}, alice)

    async def listing(name: str, headers: dict[str, str]) -> httpx.Response:
        return await client.get(f"/v1/{name}:inspectArchive", headers=headers)

    burst = [asyncio.create_task(listing(name, AUTH)) for name in mine]
    await asyncio.sleep(0.05)
    other = await listing(theirs, alice)
    answers = await asyncio.gather(*burst)
    assert other.status_code == 200, other.text
    assert sorted({a.status_code for a in answers}) == [200, 429]
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert refused.json()["error"]["message"] == (
        "at most 1 archive listing being built at once per user; retry when one is done"
    )
    assert (await listing(mine[-1], AUTH)).status_code == 200  # the slot is given back


def _small_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.png", b"")
    return out.getvalue()
