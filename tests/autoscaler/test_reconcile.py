"""The autoscaler's control loop against a real nats-server and a recorded Kubernetes API.

The Kubernetes API server cannot run here: HttpKubeApi (production code) talks to an
httpx transport that answers like the API server and records every request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import yaml
from nats.js import JetStreamContext

from bytereview.core import streams
from bytereview_operator.estimates import Observation
from bytereview_operator.kube import DELETION_COST, HttpKubeApi
from bytereview_operator.policy import MAX_HOLD_FACTOR
from bytereview_operator.reconcile import PoolController, PoolSpec, ScaleState, observe_consumer
from tests.autoscaler.helpers import beat, extract_queue, until
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
    "targetWaitSeconds": 0,
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
        # The Deployment deleted: its /scale answers 404, as kube-apiserver does.
        self.missing_deployment = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body: Any = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        path = request.url.path
        if path.endswith("/scale") and self.missing_deployment:
            return httpx.Response(404, json={"kind": "Status", "code": 404, "reason": "NotFound"})
        if path.endswith("/scale"):
            if request.method == "PATCH":
                assert request.headers["content-type"] == "application/merge-patch+json"
                assert body is not None
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


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def controller_for(
    api: FakeApiServer, js: JetStreamContext, clock: Clock | None = None
) -> PoolController:
    """The production controller over the stand-in API server (the only fake: no real
    Kubernetes API server in this test), on the real nats-server."""
    kube = HttpKubeApi(
        httpx.AsyncClient(transport=httpx.MockTransport(api), base_url="https://k8s.test")
    )
    if clock is None:
        return PoolController(kube=kube, js=js, namespace="br", body=BODY)
    return PoolController(kube=kube, js=js, namespace="br", body=BODY, clock=clock)


async def test_burst_scales_up_then_idle_pods_go_first(js: JetStreamContext) -> None:
    await streams.declare_queue(js, extract_queue())
    api = FakeApiServer(replicas=0, pods=[])
    clock = Clock()
    controller = controller_for(api, js, clock)
    idle = await controller.step(SPEC)
    assert idle["desiredReplicas"] == 0
    assert api.calls("PATCH", "/scale") == []

    for i in range(200):
        await js.publish("br.extract", f"task {i}".encode())
    spec = extract_queue()
    await assert_counts(js, spec, (200, 0, 200, 0))
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
    controller.heartbeats.inflight.update({"busy": 2, "idle": 0})
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


def scale_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The operator's INFO lines since the last call (then forgotten)."""
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("bytereview_operator") and r.levelno == logging.INFO
    ]
    caplog.clear()
    return lines


async def test_each_scaling_is_logged_once_with_its_reason(
    js: JetStreamContext, caplog: pytest.LogCaptureFixture
) -> None:
    """A scale-up and a scale-down each log one INFO line: the pool, old -> new replicas,
    the policy's reason and the inputs behind it. A poll that changes nothing (holding the
    new count, or idle) logs nothing at INFO, so a pool polled every few seconds does not
    fill the log."""
    caplog.set_level(logging.INFO, logger="bytereview_operator")
    await streams.declare_queue(js, extract_queue())
    api = FakeApiServer(replicas=0, pods=[])
    clock = Clock()
    controller = controller_for(api, js, clock)
    await controller.step(SPEC)
    assert scale_lines(caplog) == []  # idle at zero: no change

    for i in range(200):
        await js.publish("br.extract", f"task {i}".encode())
    await assert_counts(js, extract_queue(), (200, 0, 200, 0))
    clock.now += 5
    await controller.step(SPEC)
    [up] = scale_lines(caplog)
    assert up.startswith("WorkerPool br/extract: bytereview-extract 0 -> 8 replicas (")
    assert "(activate from zero; pending 200, in flight 0, arrivals 40/s," in up
    for _ in range(3):  # the same target, polled again
        clock.now += 5
        held = await controller.step(SPEC)
        assert held["desiredReplicas"] == 8
    assert scale_lines(caplog) == []

    sub = await js.pull_subscribe_bind("extract-workers", stream="BR_EXTRACT")
    done = 0
    while done < 200:  # MaxAckPending (64) caps each fetch
        for msg in await sub.fetch(64, timeout=5):
            await msg.ack_sync()
            done += 1
    await sub.unsubscribe()
    await assert_counts(js, extract_queue(), (200, 200, 0, 0))
    clock.now += 40  # past the stabilization window
    await controller.step(SPEC)
    [down] = scale_lines(caplog)
    assert down.startswith("WorkerPool br/extract: bytereview-extract 8 -> 0 replicas (")
    assert "(scale down: below current for the whole window; pending 0, in flight 0," in down
    clock.now += 5
    await controller.step(SPEC)
    assert scale_lines(caplog) == []


async def counts(
    js: JetStreamContext, spec: streams.QueueSpec
) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """(arrived, completed, pending, in flight) as the operator reads them, and (arrived,
    completed) from the stream's own state: a work-queue stream removes what is done, so
    completed = last_seq - messages."""
    seen = await observe_consumer(js, spec.stream, spec.durable, 0.0)
    assert seen is not None
    state = (await js.stream_info(spec.stream)).state
    reading = (seen.arrived, seen.completed, seen.pending, seen.in_flight)
    return reading, (state.last_seq, state.last_seq - state.messages)


async def assert_counts(
    js: JetStreamContext, spec: streams.QueueSpec, expected: tuple[int, int, int, int]
) -> None:
    """The operator's reading equals `expected`, and the stream's state agrees, once the
    server has applied what the test did: a consumer learns of a stored message, a nak or
    a term a moment after the call returns (the operator simply sees it at its next poll)."""
    deadline = asyncio.get_running_loop().time() + 3
    while (found := await counts(js, spec)) != (expected, expected[:2]):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert found == (expected, expected[:2])


async def test_counts_are_true_through_out_of_order_acks_redeliveries_and_terms(
    js: JetStreamContext,
) -> None:
    spec = dataclasses.replace(extract_queue(), ack_wait_seconds=1, max_deliver=2)
    await streams.declare_queue(js, spec)
    for i in range(20):
        await js.publish("br.extract", f"task {i}".encode())
    await assert_counts(js, spec, (20, 0, 20, 0))
    sub = await js.pull_subscribe_bind(spec.durable, stream=spec.stream)
    msgs = await sub.fetch(20, timeout=5)
    await assert_counts(js, spec, (20, 0, 0, 20))

    # 19 of 20 acked, the oldest still running: 19 completions (the ack floor says 0).
    for msg in msgs[1:]:
        await msg.ack_sync()
    await assert_counts(js, spec, (20, 19, 0, 1))
    info = await js.consumer_info(spec.stream, spec.durable)
    assert info.ack_floor.consumer_seq == 0  # why the ack floor is not a count

    # The oldest is nak'ed and redelivered: neither an arrival nor a completion.
    await msgs[0].nak()
    [again] = await sub.fetch(1, timeout=5)
    assert again.metadata.num_delivered == 2
    await assert_counts(js, spec, (20, 19, 0, 1))
    # Terminated: it has left the queue for good.
    await again.term()
    await assert_counts(js, spec, (20, 20, 0, 0))

    # Five more: one nak'ed with a delay, the others left to run out their AckWait.
    for i in range(5):
        await js.publish("br.extract", f"more {i}".encode())
    more = await sub.fetch(5, timeout=5)
    await more[0].nak(delay=30)
    await asyncio.sleep(1.5)
    await assert_counts(js, spec, (25, 20, 0, 5))
    redelivered = await sub.fetch(4, timeout=5)
    assert {m.metadata.num_delivered for m in redelivered} == {2}
    await assert_counts(js, spec, (25, 20, 0, 5))  # redeliveries are not arrivals
    for msg in reversed(redelivered):  # acked newest first
        await msg.ack_sync()
    await assert_counts(js, spec, (25, 24, 0, 1))
    # The delayed one, once deleted as a dead letter would be, counts as done too.
    await js.delete_msg(spec.stream, more[0].metadata.sequence.stream)
    await assert_counts(js, spec, (25, 25, 0, 0))
    await sub.unsubscribe()


async def test_counts_cover_every_tenant_lane_of_a_fair_queue(js: JetStreamContext) -> None:
    """A fair queue has a consumer per tenant lane, created when a worker first pulls the
    lane: the operator counts the whole backlog, lanes without a consumer included."""
    spec = dataclasses.replace(extract_queue(), fair=True)
    await streams.declare_queue(js, spec)
    for tenant, n in (("a", 6), ("b", 3)):
        for i in range(n):
            await js.publish(spec.lane_subject(tenant), f"{tenant} {i}".encode())
    await assert_counts(js, spec, (9, 0, 9, 0))
    # A worker pulls lane a only: its consumer exists now, lane b still has none.
    durable = await streams.declare_lane(js, spec, spec.lane_subject("a"))
    sub = await js.pull_subscribe_bind(durable, stream=spec.stream)
    msgs = await sub.fetch(4, timeout=5)
    await assert_counts(js, spec, (9, 0, 5, 4))
    for msg in msgs[1:]:
        await msg.ack_sync()
    await assert_counts(js, spec, (9, 3, 5, 1))
    await sub.unsubscribe()


async def test_status_reports_true_rates_and_the_measured_task_time(js: JetStreamContext) -> None:
    await streams.declare_queue(js, extract_queue())
    api = FakeApiServer(replicas=2, pods=[])
    clock = Clock()
    controller = controller_for(api, js, clock)
    await controller.step(SPEC)
    for i in range(40):
        await js.publish("br.extract", f"task {i}".encode())
    await assert_counts(js, extract_queue(), (40, 0, 40, 0))
    sub = await js.pull_subscribe_bind("extract-workers", stream="BR_EXTRACT")
    msgs = await sub.fetch(40, timeout=5)
    for msg in msgs[1:]:  # the oldest is still running
        await msg.ack_sync()
    clock.now += 10
    status = await controller.step(SPEC)
    assert status["arrivalRate"] == 4.0
    assert status["completionRate"] == 3.9  # 39 in 10 s, not the ack floor's 0
    assert status["inFlight"] == 1
    # 10 s of busy slots (0 at the first poll, 1 at the second: 5 slot-seconds) over 39
    # completions and the prior's two 4-second tasks.
    assert status["taskSeconds"] == round((2 * 4 + 5) / (2 + 39 + 0.5), 3)
    await msgs[0].ack_sync()
    await sub.unsubscribe()


async def test_no_pods_are_added_while_the_pools_workers_wait_out_an_outage(
    nats: NatsServer, js: JetStreamContext
) -> None:
    """The pool's heartbeats are summed over its pods (another pool's are not), reach the
    policy, and hold the scale-up a growing queue would get; once they say the waits ended,
    the next poll scales up."""
    await streams.declare_queue(js, extract_queue())
    api = FakeApiServer(replicas=2, pods=[])
    clock = Clock()
    controller = controller_for(api, js, clock)
    workers = await nats_connect(nats.url)
    try:
        await controller.heartbeats.attach(workers)
        for i in range(200):
            await js.publish("br.extract", f"task {i}".encode())
        sub = await js.pull_subscribe_bind("extract-workers", stream="BR_EXTRACT")
        running = await sub.fetch(4, timeout=5)  # the two pods' four slots, never acked
        await assert_counts(js, extract_queue(), (200, 0, 196, 4))

        await beat(workers, "extract-workers", "extract-a", 2, 2)
        await beat(workers, "extract-workers", "extract-b", 2, 1)
        await beat(workers, "ingest-workers", "ingest-a", 9, 9)
        await until(lambda: controller.heartbeats.waiting("extract-workers") == 3)
        clock.now += 5
        held = await controller.step(SPEC)
        assert held["desiredReplicas"] == 2
        assert held["waitingOutOutage"] == 3
        assert held["conditions"][0]["message"] == (
            "hold: 3 tasks are waiting on a dependency (its outage or its quota); more pods would wait too"
        )
        assert api.calls("PATCH", "/scale") == []

        await beat(workers, "extract-workers", "extract-a", 2, 0)
        await beat(workers, "extract-workers", "extract-b", 2, 0)
        await until(lambda: controller.heartbeats.waiting("extract-workers") == 0)
        clock.now += 5
        up = await controller.step(SPEC)
        assert up["desiredReplicas"] == 8
        assert api.calls("PATCH", "/scale") == [{"spec": {"replicas": 8}}]
        for msg in running:
            await msg.ack_sync()
        await sub.unsubscribe()
    finally:
        await workers.drain()


def test_scale_state_keeps_the_service_window_and_remembers_scale_downs() -> None:
    state = ScaleState()
    policy = PoolSpec.parse(SPEC).policy
    for t in range(0, 1400, 5):
        state.decide(policy, Observation(float(t), 0, 0, 0, 0), current=0)
    times = [o.time for o in state.history]
    # A rate-sized pool keeps the arrivals bursts_recur reads (longer than the service
    # window), plus the observation just before them.
    kept = policy.burst_memory_seconds + policy.rate_window_seconds
    assert kept > policy.service_window_seconds
    assert times[0] <= 1395 - kept < times[1]
    wait_targeted = dataclasses.replace(policy, target_wait_seconds=200.0)
    ingest = ScaleState()
    for t in range(0, 1200, 5):
        ingest.decide(wait_targeted, Observation(float(t), 0, 0, 0, 0), current=1)
    # Ten minutes of observations, plus the one just before them.
    assert [o.time for o in ingest.history][:2] == [595.0, 600.0]
    # Recommendations as far back as the longest hold can reach (recurring bursts' too).
    longest = max(
        policy.scale_down_stabilization_seconds * MAX_HOLD_FACTOR, policy.recurring_hold_seconds
    )
    assert longest == policy.recurring_hold_seconds
    assert min(t for t, _ in state.recent) == 1395 - longest
    assert state.last_scale_down is None
    state.decide(policy, Observation(1400.0, 0, 0, 0, 0), current=3)
    assert state.last_scale_down == 1400.0


async def test_missing_consumer_is_a_condition_not_a_scale(js: JetStreamContext) -> None:
    api = FakeApiServer(replicas=3, pods=[])
    controller = controller_for(api, js)
    status = await controller.step(SPEC)
    assert status["conditions"][0]["reason"] == "ConsumerMissing"
    assert api.requests == []
    bad = await controller.step({**SPEC, "maxReplicas": -1})
    assert bad["conditions"][0]["reason"] == "InvalidSpec"


def test_crd_schema_and_spec_parser_agree() -> None:
    """Every field the parser reads is in the CRD, with the same defaults."""
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


async def test_a_deleted_deployment_or_unreachable_nats_is_a_condition(
    nats: NatsServer,
) -> None:
    """A poll that cannot act says why in the status; it never leaves the last "Ready".

    (The operator trial against a real API server: deleting the pool's Deployment, or
    stopping NATS, left `Ready True: steady` and the old replica count on the WorkerPool
    while every poll failed in the log only.)
    """
    nc = await nats_connect(nats.url)
    js = nc.jetstream()
    await streams.declare_queue(js, extract_queue())
    spec = {**SPEC, "stream": extract_queue().stream, "consumer": extract_queue().durable}
    api = FakeApiServer(replicas=3, pods=[])
    controller = controller_for(api, js)
    ready = await controller.step(spec)
    assert ready["conditions"][0]["status"] == "True"
    scaled = len(api.calls("PATCH", "/scale"))

    api.missing_deployment = True
    gone = await controller.step(spec)
    assert gone["conditions"][0]["status"] == "False"
    assert gone["conditions"][0]["reason"] == "DeploymentMissing"
    assert "bytereview-extract" in gone["conditions"][0]["message"]
    assert len(api.calls("PATCH", "/scale")) == scaled

    api.missing_deployment = False
    await nc.close()
    down = await controller.step(spec)
    assert down["conditions"][0]["status"] == "False"
    assert down["conditions"][0]["reason"] == "QueueUnreadable"
    assert len(api.calls("PATCH", "/scale")) == scaled


async def test_the_ready_condition_changes_its_time_only_when_its_status_changes(
    nats: NatsServer,
) -> None:
    """lastTransitionTime changed on every poll (the operator trial), so "Ready since when"
    could not be read from it. It is the time the status last changed, and a restarted
    operator takes it from the resource."""
    nc = await nats_connect(nats.url)
    try:
        js = nc.jetstream()
        await streams.declare_queue(js, extract_queue())
        spec = {**SPEC, "stream": extract_queue().stream, "consumer": extract_queue().durable}
        api = FakeApiServer(replicas=3, pods=[])
        controller = controller_for(api, js)
        said = {"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}
        controller.body = {**BODY, "status": {"conditions": [said]}}

        def since(status: dict[str, Any]) -> str:
            return str(status["conditions"][0]["lastTransitionTime"])

        assert since(await controller.step(spec)) == "2020-01-01T00:00:00Z"
        assert since(await controller.step(spec)) == "2020-01-01T00:00:00Z"
        api.missing_deployment = True
        gone = since(await controller.step(spec))
        assert gone != "2020-01-01T00:00:00Z"
        assert since(await controller.step(spec)) == gone  # still False: same time
        api.missing_deployment = False
        assert since(await controller.step(spec)) >= gone
    finally:
        await nc.close()
