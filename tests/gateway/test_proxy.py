"""The transcoding proxy: call shapes read from descriptors, stream resumption, metrics."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from bytereview.core import DEV_TOKEN
from gateway import public_routes
from gateway.proxy import CallShape

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}
SSE = {**AUTH, "Accept": "text/event-stream"}


def _shape(method: str) -> CallShape:
    route = next(r for r in public_routes().routes if r.method.name == method)
    return CallShape.of(route.method)


def test_call_shapes_come_from_the_descriptors() -> None:
    watch, export, events, get = (
        _shape(m) for m in ("WatchJob", "ExportResults", "ListJobEvents", "GetJob")
    )
    assert (watch.streaming, watch.raw_bytes, watch.numbered, watch.resumable) == (
        True,
        False,
        True,
        True,
    )
    assert (export.streaming, export.raw_bytes, export.resumable) == (True, True, False)
    # Unary calls are never resumed from Last-Event-ID, whatever their fields.
    assert (events.streaming, events.resumable, get.streaming) == (False, False, False)


async def _event_ids(
    client: httpx.AsyncClient,
    path: str,
    *,
    headers: dict[str, str],
    params: dict[str, int] | None = None,
) -> list[int]:
    ids = []
    async with client.stream("GET", path, headers=headers, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
    return ids


async def test_sse_resumes_after_the_last_event_id(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/jobs", headers=AUTH, json={"files": [{"path": "a.pdf", "sizeBytes": 3}]}
    )
    job = created.json()["job"]["name"]
    cancelled = await client.post(f"/v1/{job}:cancel", headers=AUTH, json={})
    assert cancelled.status_code == 200
    # The job is final, so each stream sends the job's state, replays what is asked for and
    # ends. The state comes first, numbered where the stream resumes (the id asked for).
    everything = await _event_ids(
        client,
        f"/v1/{job}:watch",
        headers={**SSE, "Last-Event-ID": "0"},
        params={"afterSequence": 1},
    )
    assert len(everything) >= 2
    assert everything == list(range(1, 1 + len(everything)))
    resumed = await _event_ids(client, f"/v1/{job}:watch", headers={**SSE, "Last-Event-ID": "1"})
    assert resumed == everything
    # An explicit afterSequence wins over the header.
    explicit = await _event_ids(
        client,
        f"/v1/{job}:watch",
        headers={**SSE, "Last-Event-ID": "1"},
        params={"afterSequence": everything[-1] - 1},
    )
    assert explicit == everything[-2:]


def _count(template: str, status: str) -> float:
    labels = {"route": template, "status": status}
    return REGISTRY.get_sample_value("bytereview_gateway_requests_total", labels) or 0.0


def _observed(template: str) -> float:
    labels = {"route": template}
    return REGISTRY.get_sample_value("bytereview_gateway_request_seconds_count", labels) or 0.0


async def test_every_call_is_counted_by_its_http_status(client: httpx.AsyncClient) -> None:
    get, watch, create = "/v1/{name=jobs/*}", "/v1/{name=jobs/*}:watch", "/v1/jobs"
    before = {
        "get 404": _count(get, "404"),
        "get 400": _count(get, "400"),
        "create 200": _count(create, "200"),
        "create 400": _count(create, "400"),
        "watch 200": _count(watch, "200"),
        "watch 404": _count(watch, "404"),
        "get observed": _observed(get),
        "watch observed": _observed(watch),
    }
    created = await client.post(
        "/v1/jobs", headers=AUTH, json={"files": [{"path": "a.pdf", "sizeBytes": 3}]}
    )
    job = created.json()["job"]["name"]
    await client.post(f"/v1/{job}:cancel", headers=AUTH, json={})
    missing = "jobs/" + "0" * 32
    assert (await client.get(f"/v1/{missing}", headers=AUTH)).status_code == 404
    assert (await client.get("/v1/jobs/not-an-id", headers=AUTH)).status_code == 400
    assert (await client.post("/v1/jobs", headers=AUTH, content=b"{")).status_code == 400
    assert (await client.get(f"/v1/{missing}:watch", headers=SSE)).status_code == 404
    await _event_ids(client, f"/v1/{job}:watch", headers={**SSE, "Last-Event-ID": "1"})
    after = {
        "get 404": _count(get, "404"),
        "get 400": _count(get, "400"),
        "create 200": _count(create, "200"),
        "create 400": _count(create, "400"),
        "watch 200": _count(watch, "200"),
        "watch 404": _count(watch, "404"),
        "get observed": _observed(get),
        "watch observed": _observed(watch),
    }
    assert {k: after[k] - before[k] for k in before} == {
        "get 404": 1,
        "get 400": 1,
        "create 200": 1,
        "create 400": 1,
        "watch 200": 1,
        "watch 404": 1,
        "get observed": 2,
        "watch observed": 2,
    }
