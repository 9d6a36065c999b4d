"""A worker process whose fetch loop died is noticed and exits non-zero (#17 item 6).

Before, `run_worker_process` looked at the fetch loop only on SIGTERM: a loop that ended
left a process serving gRPC, connected to NATS and the jobs service, pulling nothing.
"""

from __future__ import annotations

import asyncio

import pytest

from bytereview.core import workers
from bytereview.core.settings import Settings
from bytereview.core.worker_runtime import Worker
from services.extract.worker import serve

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_a_dead_fetch_loop_stops_the_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def loop_that_dies(self: Worker) -> None:
        raise ConnectionResetError("the fetch loop died")

    # The loop is replaced by one that ends: what ended it (a nats-py error nobody caught,
    # a bug) does not matter to the watchdog.
    monkeypatch.setattr(Worker, "run", loop_that_dies)
    monkeypatch.setattr(workers, "WATCHDOG_SECONDS", 0.2)
    cfg = settings.model_copy(update={"extract_addr": "127.0.0.1:0", "jobs_addr": "127.0.0.1:1"})
    with pytest.raises(workers.WorkerStalled, match="the fetch loop died"):
        await asyncio.wait_for(serve(cfg, asyncio.Event()), timeout=30)
