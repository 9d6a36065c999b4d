"""The chart and the operator against a real API server (../shared/k8s/setup.sh).

Helm installs into kube-apiserver v1.36 (server-side validation, CRD defaulting, RBAC), the
controller-manager makes ReplicaSets and Pods (which stay Pending: no kubelet), and the
operator runs as `bytereview operator` with a token of the chart's own ServiceAccount,
reading lag from a real nats-server. The long scenario is bench/k8s_scaling.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from bytereview.core import Settings, streams
from bytereview.core.streams import WORKER_LOAD_SUBJECT
from bytereview_operator import DELETION_COST
from tests.deploy.k8s import (
    EXTERNAL_VALUES,
    Cluster,
    chart_copy,
    control_plane,
    play_kubelet,
    start_operator,
    values_file,
    wait_for,
)
from tests.servers import NatsServer, nats_server

RELEASE = "br"
FULL = f"{RELEASE}-bytereview"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with control_plane(tmp_path_factory.mktemp("helm")) as running:
        yield running


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chart_copy(tmp_path_factory.mktemp("chart"))


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    # A failed test's release: its cluster-scoped objects would outlive the namespace.
    cluster.helm("uninstall", RELEASE, "-n", name, check=False)
    # Whatever a failed test left holding a finalizer must not keep the namespace forever.
    for pool in cluster.items_if_served("workerpools", "-n", name):
        cluster.kubectl(
            "patch", "workerpool", pool["metadata"]["name"], "-n", name,
            "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False,
        )  # fmt: skip
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def names(cluster: Cluster, kind: str, namespace: str) -> set[str]:
    return {item["metadata"]["name"] for item in cluster.items(kind, "-n", namespace)}


KINDS = (
    "deployments,services,configmaps,secrets,serviceaccounts,roles,rolebindings,jobs,cronjobs,"
    "poddisruptionbudgets,persistentvolumeclaims"
)


def released(cluster: Cluster, namespace: str) -> list[str]:
    """Every object of the release still in the namespace (by the chart's instance label)."""
    selector = ("-n", namespace, "-l", f"app.kubernetes.io/instance={RELEASE}")
    out = cluster.items(KINDS, *selector)
    for kind in ("workerpools", "kopfpeerings"):
        out += cluster.items_if_served(kind, *selector)
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in out)


def test_invalid_values_are_refused_before_anything_is_applied(
    cluster: Cluster, chart: Path, namespace: str, tmp_path: Path
) -> None:
    values = copy.deepcopy(EXTERNAL_VALUES)
    values["extract"] = {"concurrency": 0}
    done = cluster.helm(
        "install", RELEASE, str(chart), "-n", namespace,
        "-f", values_file(tmp_path / "bad.yaml", values), check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert "concurrency" in done.stderr
    assert released(cluster, namespace) == []
    # Not even the release record: helm stopped before talking to the API server's objects.
    assert names(cluster, "secrets", namespace) == set()


def _migration_pod(cluster: Cluster, namespace: str) -> str | None:
    """The migration hook Job's Pod that has not run yet."""
    pods = cluster.items("pods", "-n", namespace, "-l", f"job-name={FULL}-migrate")
    pending = [p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Pending"]
    return pending[0] if pending else None


def _helm_through_migration(
    cluster: Cluster, namespace: str, *argv: str, meanwhile: Callable[[], None] | None = None
) -> None:
    """`helm argv...` (an install or upgrade whose pre-hook migrates), `meanwhile` checked
    while it waits on the hook, the migration Pod played to success (no kubelet here), and
    helm's success asserted."""
    helm = cluster.helm_async(*argv)
    try:
        if meanwhile is not None:
            meanwhile()
        pod = wait_for("the migration Pod", lambda: _migration_pod(cluster, namespace))
        play_kubelet(cluster, namespace, pod)
        _, err = helm.communicate(timeout=180)
        assert helm.returncode == 0, err
    finally:
        if helm.poll() is None:
            helm.kill()


def test_install_runs_hooks_first_then_upgrades_and_uninstalls_cleanly(
    cluster: Cluster, chart: Path, namespace: str, tmp_path: Path
) -> None:
    values_path = values_file(tmp_path / "values.yaml", EXTERNAL_VALUES)

    def hooks_alone() -> None:
        # The pre-install hooks exist alone: the Secret (weight -10), then the migration Job,
        # which the services wait behind until it completes. Then the Job controller makes
        # its Pod, and the kubelet is played: it ran and exited 0.
        wait_for(
            "the migration hook Job",
            lambda: f"{FULL}-migrate" in names(cluster, "jobs", namespace),
        )
        assert f"{FULL}-secrets" in names(cluster, "secrets", namespace)
        assert names(cluster, "deployments", namespace) == set()
        assert names(cluster, "services", namespace) == set()

    _helm_through_migration(
        cluster, namespace, "install", RELEASE, str(chart), "-n", namespace,
        "-f", values_path, "--timeout", "3m", meanwhile=hooks_alone,
    )  # fmt: skip
    deployments = {d["metadata"]["name"]: d for d in cluster.items("deployments", "-n", namespace)}
    assert set(deployments) == {
        f"{FULL}-{c}" for c in ("gateway", "jobs", "ingest", "extract", "operator")
    }
    # hook-succeeded: the migration Job is gone once it has done its work.
    assert names(cluster, "jobs", namespace) == set()
    # The CRD's defaults were applied server-side to what the chart left out.
    pool = cluster.get("workerpool", f"{FULL}-extract", "-n", namespace)
    assert pool["spec"]["pollSeconds"] == 5
    assert pool["spec"]["maxReplicas"] == 20
    # The controller-manager acts on what was installed: ReplicaSets and (Pending) Pods.
    wait_for(
        "Pods of the gateway",
        lambda: len(cluster.items("pods", "-n", namespace, "-l", "app.kubernetes.io/component=gateway")) == 2,
    )  # fmt: skip
    secret_before = cluster.get("secret", f"{FULL}-secrets", "-n", namespace)["data"]

    changed = copy.deepcopy(EXTERNAL_VALUES)
    changed["extract"] = {"maxReplicas": 7}
    changed["config"] = {"logLevel": "DEBUG"}
    _helm_through_migration(
        cluster, namespace, "upgrade", RELEASE, str(chart), "-n", namespace,
        "-f", values_file(tmp_path / "changed.yaml", changed), "--timeout", "3m",
    )  # fmt: skip
    pool = cluster.get("workerpool", f"{FULL}-extract", "-n", namespace)
    assert pool["spec"]["maxReplicas"] == 7
    config = cluster.get("configmap", f"{FULL}-config", "-n", namespace)["data"]
    assert config["BYTEREVIEW_LOG_LEVEL"] == "DEBUG"
    # Generated secrets survive an upgrade (lookup), or every signed URL would break.
    secret_after = cluster.get("secret", f"{FULL}-secrets", "-n", namespace)["data"]
    assert secret_after["signing-secret"] == secret_before["signing-secret"]
    history = json.loads(cluster.helm("history", RELEASE, "-n", namespace, "-o", "json").stdout)
    assert [h["status"] for h in history] == ["superseded", "deployed"]

    cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "2m")
    # Only what is kept on purpose stays (resource-policy keep): the uploaded documents' claim
    # and the Secret whose signing key their URLs were signed with.
    assert released(cluster, namespace) == [
        f"PersistentVolumeClaim/{FULL}-storage",
        f"Secret/{FULL}-secrets",
    ]
    assert cluster.helm("list", "-n", namespace, "-q").stdout.strip() == ""


def test_turning_migrations_off_keeps_the_generated_secret(
    cluster: Cluster, chart: Path, namespace: str, tmp_path: Path
) -> None:
    """The generated Secret is the same kind of object whatever migrations.enabled says.

    It was a pre-install hook only with migrations on and an external database, and a
    release object otherwise: `helm upgrade --set migrations.enabled=false` then failed
    ("Secret ... exists and cannot be imported into the current release: invalid ownership
    metadata"), and the opposite toggle's rollback failed too.
    """
    values_path = values_file(tmp_path / "values.yaml", EXTERNAL_VALUES)
    _helm_through_migration(
        cluster, namespace, "install", RELEASE, str(chart), "-n", namespace, "-f", values_path
    )
    before = cluster.get("secret", f"{FULL}-secrets", "-n", namespace)["data"]

    off = copy.deepcopy(EXTERNAL_VALUES)
    off["migrations"] = {"enabled": False}
    done = cluster.helm(
        "upgrade", RELEASE, str(chart), "-n", namespace,
        "-f", values_file(tmp_path / "off.yaml", off), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    after = cluster.get("secret", f"{FULL}-secrets", "-n", namespace)["data"]
    assert after["signing-secret"] == before["signing-secret"]
    assert after["worker-token"] == before["worker-token"]


async def _publish(nats_url: str, count: int) -> None:
    settings = Settings(nats_url=nats_url)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    spec = streams.extract_queue(settings)
    await streams.declare_queue(js, spec)
    for i in range(count):
        await js.publish(spec.subject, json.dumps({"task": i}).encode())
    await nc.close()


async def _drain(nats_url: str, busy_pod: str, stop: asyncio.Event) -> int:
    """A test consumer takes every message; meanwhile `busy_pod` reports work in flight."""
    settings = Settings(nats_url=nats_url)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    spec = streams.extract_queue(settings)
    sub = await js.pull_subscribe_bind(spec.durable, spec.stream)
    done = 0
    subject = f"{WORKER_LOAD_SUBJECT}.{spec.durable}.{busy_pod}"
    while not stop.is_set():
        await nc.publish(subject, json.dumps({"pod": busy_pod, "inflight": 5}).encode())
        try:
            batch = await sub.fetch(500, timeout=0.5)
        except TimeoutError:  # nats raises both its own and asyncio's
            continue
        for msg in batch:
            await msg.ack()
        done += len(batch)
    await nc.close()
    return done


def _scale(cluster: Cluster, namespace: str) -> int:
    return int(cluster.get("deployment", f"{FULL}-extract", "-n", namespace)["spec"]["replicas"])


def _live_pods(cluster: Cluster, namespace: str, count: int) -> list[dict[str, Any]] | None:
    """The extract Pods not being deleted, once there are `count` of them."""
    pods = cluster.items("pods", "-n", namespace, "-l", "app.kubernetes.io/component=extract")
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return live if len(live) == count else None


def test_operator_scales_with_its_own_service_account(
    cluster: Cluster, chart: Path, namespace: str, tmp_path: Path
) -> None:
    with nats_server() as server:
        _scale_against(cluster, chart, namespace, tmp_path, server)


def _scale_against(
    cluster: Cluster, chart: Path, namespace: str, tmp_path: Path, nats: NatsServer
) -> None:
    values = copy.deepcopy(EXTERNAL_VALUES)
    values["operator"] = {"replicas": 2}
    values["extract"] = {"minReplicas": 1, "maxReplicas": 4}
    cluster.helm(
        "install", RELEASE, str(chart), "-n", namespace, "--no-hooks",
        "-f", values_file(tmp_path / "values.yaml", values),
    )  # fmt: skip
    # Quick polls and a short scale-down window, as a user tunes the pool.
    cluster.kubectl(
        "patch", "workerpool", f"{FULL}-extract", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"pollSeconds": 1, "scaleDownStabilizationSeconds": 3}}),
    )  # fmt: skip
    asyncio.run(_publish(nats.url, 0))  # the queue exists, empty

    token = cluster.token_kubeconfig(
        namespace, f"{FULL}-operator", tmp_path / "operator.kubeconfig"
    )
    # The Role is enough for the operator's work, and nothing beyond it is allowed.
    as_operator = ["--kubeconfig", str(token), "-n", namespace]
    for resource, sub in (("deployments", "scale"), ("workerpools", "status"), ("pods", "")):
        can = ["auth", "can-i", "patch", resource, f"--subresource={sub}", *as_operator]
        done = cluster.kubectl(*can, check=False)
        assert done.stdout.strip() == "yes", (resource, sub)
    for argv in (
        ["get", "secrets"],
        ["delete", "deployment", f"{FULL}-gateway"],
        # /scale is granted; the Deployment itself (its image, its labels) is not.
        ["label", "deployment", f"{FULL}-gateway", "touched=yes"],
        ["create", "configmap", "planted"],
        ["get", "pods", "--all-namespaces"],
    ):
        done = cluster.kubectl(*argv, *as_operator, check=False)
        assert done.returncode != 0, argv
        assert "forbidden" in done.stderr.lower(), argv
    assert _scale(cluster, namespace) == 1

    peering = f"{FULL}-operator"
    first = start_operator(token, namespace, peering, nats.url, tmp_path / "op1.log")
    second = None
    try:
        wait_for(
            "the first operator's status on the pool",
            lambda: (
                cluster.get("workerpool", f"{FULL}-extract", "-n", namespace)
                .get("status", {})
                .get("conditions")
            ),
            timeout=60,
        )
        second = start_operator(token, namespace, peering, nats.url, tmp_path / "op2.log")
        # Both announce themselves in the chart's peering object; the one started first has
        # the higher priority, so the second stays in kopf's initial pause.
        wait_for(
            "two peers",
            lambda: (
                len(cluster.get("kopfpeering", peering, "-n", namespace).get("status", {})) == 2
            ),
        )
        assert "Resuming operations" in first.text()

        asyncio.run(_publish(nats.url, 2000))
        wait_for("a scale-up", lambda: _scale(cluster, namespace) == 4, timeout=30)
        # The status is written just after /scale is patched.
        status = wait_for(
            "the status of the scale-up",
            lambda: (
                lambda st: st if st.get("desiredReplicas") == 4 else None
            )(cluster.get("workerpool", f"{FULL}-extract", "-n", namespace)["status"]),
        )  # fmt: skip
        assert status["observedLag"] > 0
        # One step or two: the 2,000 messages may land across two polls on a busy machine.
        assert re.match(r"[1-3] -> 4: scale up", status["lastScaleReason"])
        pods = wait_for("four extract Pods", lambda: _live_pods(cluster, namespace, 4))
        busy = sorted(p["metadata"]["name"] for p in pods)[1]

        async def drain_until_scaled_down() -> int:
            stop = asyncio.Event()
            task = asyncio.create_task(_drain(nats.url, busy, stop))
            try:
                # The wait holds the test consumer's drain of 2,000 messages too, which on a
                # loaded 2-core machine took most of a minute (60 s failed now and then).
                await asyncio.to_thread(
                    wait_for, "a scale-down", lambda: _scale(cluster, namespace) == 1, 180
                )
            finally:
                stop.set()
                # Awaited even when the wait failed: its NATS connection is closed, not left
                # for the collector to warn about in whichever test runs next.
                drained = await task
            return drained

        assert asyncio.run(drain_until_scaled_down()) == 2000
        # Before scaling down, every Pod got its in-flight work as deletion cost, so the
        # ReplicaSet kept the busy one.
        survivors = wait_for(
            "the ReplicaSet to remove three Pods", lambda: _live_pods(cluster, namespace, 1)
        )
        assert survivors[0]["metadata"]["name"] == busy
        assert survivors[0]["metadata"]["annotations"][DELETION_COST] == "5"
        events = cluster.items(
            "events", "-n", namespace, "--field-selector", f"involvedObject.name={FULL}-extract"
        )
        scaled = [e["message"] for e in events if e["reason"] == "Scaled"]
        # As above: one step or two (1 -> 3 -> 4 when the messages land across two polls).
        assert any(re.search(r"[1-3] -> 4 replicas", m) for m in scaled), scaled
        assert any("-> 1 replicas" in m for m in scaled), scaled
        # Only the first operator acted: the second one never left its pause.
        assert "Resuming operations" not in second.text()
        assert first.process.poll() is None
        # No finalizer on the pools, so uninstalling (which removes the operator's Role before
        # the pools) leaves nothing stuck Terminating.
        pool = cluster.get("workerpool", f"{FULL}-extract", "-n", namespace)
        assert pool["metadata"].get("finalizers", []) == []
        cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "1m")
        assert released(cluster, namespace) == [f"PersistentVolumeClaim/{FULL}-storage"]
        assert names(cluster, "workerpools", namespace) == set()
    finally:
        for op in (first, second):
            if op is not None:
                op.stop()
