"""The operator starts whether NATS answers or not: started while NATS was down it waited in
its startup handler (a traceback every 2 s), never served /healthz, and said nothing on the
pools (the Kubernetes trial). The production startup and cleanup handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from bytereview.core.settings import get_settings
from bytereview_operator import handlers
from bytereview_operator.reconcile import PoolController
from launcher.up.wiring import free_port
from tests.servers import NatsServer

# kopf's decorators type the handlers as its callback protocol, every argument it may pass
# required; called here with the ones they use, as kopf passes them by name.
startup: Any = handlers.startup
cleanup: Any = handlers.cleanup


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    config = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "sa", "namespace": "br"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "sa", "user": {"token": "t"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _started(url: str, monkeypatch: pytest.MonkeyPatch) -> kopf.Memo:
    monkeypatch.setenv("BYTEREVIEW_NATS_URL", url)
    get_settings.cache_clear()
    memo = kopf.Memo()
    await asyncio.wait_for(startup(settings=kopf.OperatorSettings(), memo=memo), 10)
    return memo


@pytest.mark.usefixtures("kubeconfig")
async def test_startup_does_not_wait_for_nats(monkeypatch: pytest.MonkeyPatch) -> None:
    memo = await _started(f"nats://127.0.0.1:{free_port()}", monkeypatch)
    try:
        await asyncio.sleep(1.5)  # attempts to connect go on meanwhile
        assert not memo.nc.is_connected
        pool = PoolController(kube=memo.kube, js=memo.js, namespace="br", body={})
        [ready] = pool.waiting_for_nats()["conditions"]
        assert (ready["status"], ready["reason"]) == ("False", "QueueUnreadable")
    finally:
        await asyncio.wait_for(cleanup(memo=memo), 10)
    assert memo.connecting.cancelled()


@pytest.mark.usefixtures("kubeconfig")
async def test_startup_connects_in_the_background(
    nats: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    memo = await _started(nats.url, monkeypatch)
    try:
        await asyncio.wait_for(memo.connecting, 10)
        assert memo.nc.is_connected
    finally:
        await asyncio.wait_for(cleanup(memo=memo), 10)
    assert memo.nc.is_closed
