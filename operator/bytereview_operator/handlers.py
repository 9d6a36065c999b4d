"""kopf handlers: thin; the work is in PoolController.

Run with `bytereview operator` (kopf's own runner). Credentials: the pod's service account,
or outside a pod the kubeconfig's current context (credentials.py); kopf and our own API
calls share them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any

import kopf
from nats.aio.client import Client as NatsClient

from bytereview.core import get_settings
from bytereview.core.streams import said_errors
from bytereview_operator.credentials import connection, http_client
from bytereview_operator.heartbeats import WorkerHeartbeats
from bytereview_operator.kube import GROUP, PLURAL, VERSION, HttpKubeApi, KubeError
from bytereview_operator.reconcile import PoolController, PoolSpec

log = logging.getLogger(__name__)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    config = get_settings()
    memo.kube = HttpKubeApi(http_client(connection(settings)))
    # Every pool's heartbeats, shared by the pools' daemons.
    memo.heartbeats = WorkerHeartbeats()
    # NATS is connected in the background: started while NATS was down, the operator waited
    # here (a traceback every 2 s), never served /healthz, and said nothing on the pools.
    # Until it answers, each poll says QueueUnreadable on its pool and leaves replicas be.
    memo.nc = NatsClient()
    memo.js = memo.nc.jetstream()
    memo.connecting = asyncio.create_task(_connect(memo, config.nats_url))


async def _connect(memo: kopf.Memo, url: str) -> None:
    await memo.nc.connect(
        url,
        name="bytereview-autoscaler",
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        error_cb=said_errors(url),
    )
    await memo.heartbeats.attach(memo.nc)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if not memo.connecting.done():
        memo.connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await memo.connecting
    if memo.nc.is_connected:
        await memo.nc.drain()


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10)
async def pool_daemon(
    spec: kopf.Spec,
    body: kopf.Body,
    namespace: str | None,
    memo: Any,
    stopped: kopf.DaemonStopped,
    **_: Any,
) -> None:
    controller = PoolController(
        kube=memo.kube,
        js=memo.js,
        namespace=namespace or "default",
        body=dict(body),
        heartbeats=memo.heartbeats,
    )
    name = body["metadata"]["name"]
    while not stopped:
        try:
            if memo.nc.is_connected:
                status = await controller.step(dict(spec))
            else:
                status = controller.waiting_for_nats()
            await memo.kube.patch_status(controller.namespace, name, status)
        except KubeError as exc:
            if exc.status == 404 and not await memo.kube.pool_exists(controller.namespace, name):
                log.info("WorkerPool %s is gone; its daemon ends", name)
                return
            log.warning("poll of %s failed: %s", name, exc)
        except Exception as exc:  # a failed poll is retried at the next one
            log.warning("poll of %s failed: %s", name, exc)
        try:
            interval = PoolSpec.parse(dict(spec)).poll_seconds
        except ValueError:
            interval = 30.0
        # Wakes at once when the pool is deleted or the operator pauses (peering) or stops.
        await stopped.wait(interval)


def _without_finalizer(fn: Any) -> None:
    """No finalizer on WorkerPools for `fn`'s daemon.

    kopf puts one on every object with a daemon, so that the daemon ends before the object
    goes. Ours holds nothing to clean up, and the finalizer would outlive the operator's
    rights: `helm uninstall` deletes custom resources last, after the Role and the
    ServiceAccount, so nobody could remove it and the pools (and their namespace) would stay
    Terminating forever. kopf has no public switch for this; its registry is adjusted here,
    and tests/deploy/test_k8s_real.py fails if that stops working. A pool deleted under a
    running daemon ends it at the next poll (pool_exists), if kopf has not stopped it first.
    """
    spawning = kopf.get_default_registry()._spawning
    spawning._handlers = [
        dataclasses.replace(h, requires_finalizer=False) if h.fn is fn else h
        for h in spawning._handlers
    ]


_without_finalizer(pool_daemon)
