"""The autoscaler against a real API server: 5,000 extract messages, up, drained, down.

    .venv/bin/python bench/k8s_scaling.py [--messages 5000] [--window S] [--rate N]

Starts (or reuses) the control plane of ../shared/k8s/setup.sh, installs the chart with
`--no-hooks` into a fresh namespace, runs two `bytereview operator` replicas with a token of
the chart's ServiceAccount against a real nats-server, queues the messages and prints, from
the moment they are queued: when the extract Deployment's /scale rose and to what, when the
WorkerPool status and the Scaled Event showed it, how long a test consumer taking `--rate`
messages/s needed to drain them, when replicas fell back and how far the ReplicaSet had
deleted Pods; then how long the standby operator took to resume after the acting one was
killed (kopf's peering lifetime). Asserts nothing. `--window` sets the pool's
scaleDownStabilizationSeconds (default: the chart's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nats

from bytereview.core import Settings, streams
from tests.deploy.k8s import (
    EXTERNAL_VALUES,
    Cluster,
    chart_copy,
    control_plane,
    start_operator,
    values_file,
    wait_for,
)
from tests.servers import nats_server

RELEASE = "br"
FULL = f"{RELEASE}-bytereview"


def replicas(cluster: Cluster, ns: str) -> int:
    return int(cluster.get("deployment", f"{FULL}-extract", "-n", ns)["spec"]["replicas"])


def pool_status(cluster: Cluster, ns: str) -> dict[str, Any]:
    status: dict[str, Any] = cluster.get("workerpool", f"{FULL}-extract", "-n", ns).get(
        "status", {}
    )
    return status


def live_pods(cluster: Cluster, ns: str) -> int:
    pods = cluster.items("pods", "-n", ns, "-l", "app.kubernetes.io/component=extract")
    return sum(1 for p in pods if not p["metadata"].get("deletionTimestamp"))


def scaled_events(cluster: Cluster, ns: str) -> list[str]:
    events = cluster.items(
        "events", "-n", ns, "--field-selector", f"involvedObject.name={FULL}-extract"
    )
    return [e["message"] for e in events if e["reason"] == "Scaled"]


async def publish(url: str, count: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    spec = streams.extract_queue(Settings(nats_url=url))
    await streams.declare_queue(js, spec)
    for i in range(count):
        await js.publish(spec.subject, json.dumps({"task": i}).encode())
    await nc.close()


async def consume(url: str, count: int, rate: float) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    spec = streams.extract_queue(Settings(nats_url=url))
    sub = await js.pull_subscribe_bind(spec.durable, spec.stream)
    done, started = 0, time.monotonic()
    while done < count:
        # Paced: `rate` messages per second, as a pool of workers would take them.
        due = int((time.monotonic() - started) * rate) - done
        if due <= 0:
            await asyncio.sleep(0.05)
            continue
        try:
            batch = await sub.fetch(min(due, 500), timeout=1)
        except TimeoutError:  # nats raises both its own and asyncio's
            continue
        for msg in batch:
            await msg.ack()
        done += len(batch)
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=float, default=None)
    parser.add_argument("--rate", type=float, default=250.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="br-k8s-bench-"))
    with control_plane(work / "helm") as cluster, nats_server() as server:
        ns = f"bench-{uuid.uuid4().hex[:6]}"
        cluster.kubectl("create", "namespace", ns)
        chart = chart_copy(work)
        values = {**EXTERNAL_VALUES, "operator": {"replicas": 2}}
        t0 = time.monotonic()
        cluster.helm(
            "install", RELEASE, str(chart), "-n", ns, "--no-hooks",
            "-f", values_file(work / "values.yaml", values),
        )  # fmt: skip
        print(f"helm install --no-hooks: {time.monotonic() - t0:.1f} s")
        if args.window is not None:
            patch = {"spec": {"scaleDownStabilizationSeconds": args.window}}
            cluster.kubectl(
                "patch", "workerpool", f"{FULL}-extract", "-n", ns, "--type=merge",
                "-p", json.dumps(patch),
            )  # fmt: skip
        spec = cluster.get("workerpool", f"{FULL}-extract", "-n", ns)["spec"]
        print(
            f"pool: min {spec['minReplicas']}, max {spec['maxReplicas']}, poll "
            f"{spec['pollSeconds']} s, scale-down window {spec['scaleDownStabilizationSeconds']} s"
        )
        asyncio.run(publish(server.url, 0))
        token = cluster.token_kubeconfig(ns, f"{FULL}-operator", work / "op.kubeconfig")
        peering = f"{FULL}-operator"
        first = start_operator(token, ns, peering, server.url, work / "op1.log")
        t0 = time.monotonic()
        wait_for("the first poll", lambda: pool_status(cluster, ns).get("conditions"), 120)
        print(f"operator up to first status written: {time.monotonic() - t0:.1f} s")
        second = start_operator(token, ns, peering, server.url, work / "op2.log")
        wait_for(
            "the standby's peering record",
            lambda: len(cluster.get("kopfpeering", peering, "-n", ns).get("status", {})) == 2,
            120,
        )
        try:
            start = replicas(cluster, ns)
            t0 = time.monotonic()
            asyncio.run(publish(server.url, args.messages))
            queued = time.monotonic() - t0
            t0 = time.monotonic()
            wait_for("a scale-up", lambda: replicas(cluster, ns) > start, 120, 0.1)
            up = time.monotonic() - t0
            top = replicas(cluster, ns)
            wait_for("the status", lambda: pool_status(cluster, ns).get("desiredReplicas") == top)
            status = time.monotonic() - t0
            wait_for("the Event", lambda: any(f"-> {top}" in m for m in scaled_events(cluster, ns)))
            event = time.monotonic() - t0
            wait_for("the Pods", lambda: live_pods(cluster, ns) == top, 120)
            pods = time.monotonic() - t0
            print(
                f"{args.messages} messages queued in {queued:.1f} s; /scale {start} -> {top} "
                f"after {up:.1f} s, status {status:.1f} s, Event {event:.1f} s, "
                f"{top} Pods (Pending) {pods:.1f} s"
            )
            t0 = time.monotonic()
            asyncio.run(consume(server.url, args.messages, args.rate))
            drained = time.monotonic() - t0
            print(f"drained by the test consumer at {args.rate:.0f}/s in {drained:.1f} s")
            t0 = time.monotonic()
            floor = int(spec["minReplicas"])
            wait_for("the scale-down", lambda: replicas(cluster, ns) == floor, 1800, 0.5)
            down = time.monotonic() - t0
            wait_for("Pods deleted", lambda: live_pods(cluster, ns) == floor, 120)
            print(
                f"/scale back to {floor} {down:.1f} s after the drain, Pods deleted "
                f"{time.monotonic() - t0:.1f} s"
            )
            for message in sorted(scaled_events(cluster, ns)):
                print(f"  Event Scaled: {message}")
            # Failover: the acting replica dies without a goodbye.
            first.process.send_signal(signal.SIGKILL)
            t0 = time.monotonic()
            wait_for("the standby to resume", lambda: "Resuming" in second.text(), 300, 0.5)
            print(f"standby resumed {time.monotonic() - t0:.1f} s after the leader was killed")
        finally:
            first.stop()
            second.stop()
            for name in ("extract", "ingest"):  # no operator is left to release them
                cluster.kubectl(
                    "patch", "workerpool", f"{FULL}-{name}", "-n", ns, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}', check=False,
                )  # fmt: skip
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


if __name__ == "__main__":
    main()
