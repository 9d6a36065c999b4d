"""The autoscaler's control loop against a real nats-server and a recorded Kubernetes API.

The Kubernetes API server cannot run here: HttpKubeApi (production code) talks to an
httpx transport that answers like the API server and records every request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from nats.js import JetStreamContext

from bytereview.core import streams
from bytereview_operator import DELETION_COST, HttpKubeApi, PoolController, PoolSpec
from tests.servers import NatsServer

SPEC = {
    "deployment": "bytereview-extract",
    "stream": "BR_EXTRACT",
    "consumer": "extract-workers",
    "minReplicas": 0,
    "maxReplicas": 8,
    "perReplicaConcurrency": 2,
    "expectedTaskSeconds": 4,
    "targetDrainSeconds": 20,
    "scaleDownStabilizationSeconds": 30,
    "maxAckPending": 64,
    "pollSeconds": 5,
}
BODY = {"metadata": {"name": "extract", "namespace": "br", "uid": "u-1"}}


class FakeApiServer:
    """Answers the handful of calls like kube-apiserver would, and records them."""

    def __init__(self, replicas: int, pods: list[dict[str, Any]]) -> None:
        self.replicas = replicas
        self.pods = pods
        self.requests: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body: Any = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        path = request.url.path
        if path.endswith("/scale"):
            if request.method == "PATCH":
                assert request.headers["content-type"] == "application/merge-patch+json"
                self.replicas = body["spec"]["replicas"]
            return httpx.Response(
                200,
                json={
                    "kind": "Scale",
                    "apiVersion": "autoscaling/v1",
                    "spec": {"replicas": self.replicas},
                    "status": {"replicas": self.replicas, "selector": "app=extract"},
                },
            )
        if path.endswith("/pods") and request.method == "GET":
            assert request.url.params["labelSelector"] == "app=extract"
            return httpx.Response(200, json={"kind": "PodList", "items": self.pods})
        if "/pods/" in path and request.method == "PATCH":
            return httpx.Response(200, json={"kind": "Pod"})
        if path.endswith("/events") and request.method == "POST":
            return httpx.Response(201, json=body)
        return httpx.Response(404, json={"kind": "Status", "code": 404})

    def calls(self, method: str, suffix: str) -> list[Any]:
        return [b for m, p, b in self.requests if m == method and p.endswith(suffix)]


@pytest.fixture
async def js(nats: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc = await nats_connect(nats.url)
    yield nc.jetstream()
    await nc.drain()


async def nats_connect(url: str) -> Any:
    return await nats.connect(url)


def spec_queue() -> streams.QueueSpec:
    return streams.QueueSpec(
        stream="BR_EXTRACT",
        subject="br.extract",
        durable="extract-workers",
        ack_wait_seconds=30,
        max_deliver=5,
        backoff_seconds=(),
        max_ack_pending=64,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_burst_scales_up_then_idle_pods_go_first(js: JetStreamContext) -> None:
    await streams.declare_queue(js, spec_queue())
    api = FakeApiServer(replicas=0, pods=[])
    clock = Clock()
    controller = PoolController(
        kube=HttpKubeApi(
            httpx.AsyncClient(transport=httpx.MockTransport(api), base_url="https://k8s.test")
        ),
        js=js,
        namespace="br",
        body=BODY,
        clock=clock,
    )
    idle = await controller.step(SPEC)
    assert idle["desiredReplicas"] == 0
    assert api.calls("PATCH", "/scale") == []

    for i in range(200):
        await js.publish("br.extract", f"task {i}".encode())
    clock.now += 5
    status = await controller.step(SPEC)
    # 200 waiting, 2 per replica per 4 s, drain in 20 s: far more than 8, so the max.
    assert api.calls("PATCH", "/scale") == [{"spec": {"replicas": 8}}]
    assert status["desiredReplicas"] == 8
    assert status["observedLag"] == 200
    assert status["lastScaleReason"].startswith("0 -> 8")
    event = api.calls("POST", "/events")[0]
    assert event["reason"] == "Scaled"
    assert event["involvedObject"]["kind"] == "WorkerPool"

    # The queue empties (work-queue stream: acked messages are removed).
    sub = await js.pull_subscribe_bind("extract-workers", stream="BR_EXTRACT")
    done = 0
    while done < 200:  # MaxAckPending (64) caps each fetch
        for msg in await sub.fetch(64, timeout=5):
            await msg.ack_sync()
            done += 1
    await sub.unsubscribe()
    api.pods = [
        {"metadata": {"name": "busy", "annotations": {}}},
        {"metadata": {"name": "idle", "annotations": {DELETION_COST: "0"}}},
    ]
    controller.pod_inflight.update({"busy": 2, "idle": 0})
    clock.now += 5
    held = await controller.step(SPEC)
    assert held["desiredReplicas"] == 8  # inside the stabilization window
    assert "hold" in held["conditions"][0]["message"]
    clock.now += 40
    down = await controller.step(SPEC)
    assert down["desiredReplicas"] == 0
    # Before scaling down, the busy pod was made expensive to delete; the idle one was already cheap.
    annotated = [(p, b) for m, p, b in api.requests if m == "PATCH" and "/pods/" in p]
    assert annotated == [
        ("/api/v1/namespaces/br/pods/busy", {"metadata": {"annotations": {DELETION_COST: "2"}}})
    ]
    assert api.calls("PATCH", "/scale")[-1] == {"spec": {"replicas": 0}}


async def test_missing_consumer_is_a_condition_not_a_scale(js: JetStreamContext) -> None:
    api = FakeApiServer(replicas=3, pods=[])
    controller = PoolController(
        kube=HttpKubeApi(
            httpx.AsyncClient(transport=httpx.MockTransport(api), base_url="https://k8s.test")
        ),
        js=js,
        namespace="br",
        body=BODY,
    )
    status = await controller.step(SPEC)
    assert status["conditions"][0]["reason"] == "ConsumerMissing"
    assert api.requests == []
    bad = await controller.step({**SPEC, "maxReplicas": -1})
    assert bad["conditions"][0]["reason"] == "InvalidSpec"


def test_crd_schema_and_spec_parser_agree() -> None:
    """Every field the parser reads is in the CRD, with the same defaults."""
    from pathlib import Path

    import yaml

    crd = yaml.safe_load(
        (
            Path(__file__).resolve().parents[2] / "deploy/helm/bytereview/crds/workerpools.yaml"
        ).read_text()
    )
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]
    assert set(props) == set(SPEC)
    defaults = {k: v["default"] for k, v in props.items() if "default" in v}
    parsed = PoolSpec.parse({"deployment": "d", "stream": "s", "consumer": "c", **defaults})
    bare = PoolSpec.parse({"deployment": "d", "stream": "s", "consumer": "c"})
    assert parsed == bare
