"""A process waiting for NATS stops when told to, and says so in a line now and then, not a
traceback a second: a pod started during a NATS outage ignored SIGTERM until its grace
period ended in a SIGKILL (the CLI trial)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bytereview.core import streams
from bytereview.core.settings import Settings
from launcher.up.wiring import free_port
from services.jobs import server as jobs_server


def _nowhere(settings: Settings) -> Settings:
    """`settings` with a NATS URL where nothing listens, credentials in it."""
    return settings.model_copy(update={"nats_url": f"nats://who:secret@127.0.0.1:{free_port()}"})


async def test_waiting_for_nats_ends_when_told_to_stop(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(2.5, stop.set)
    with caplog.at_level(logging.INFO), pytest.raises(streams.StoppedWhileConnecting):
        await asyncio.wait_for(streams.connect(_nowhere(settings), name="t", stop=stop), 20)
    said = [r for r in caplog.records if r.name.startswith(("nats", "bytereview.core.streams"))]
    # Two attempts or more in 2.5 s, one line, no traceback, no password.
    assert len(said) == 1, [r.getMessage() for r in said]
    assert said[0].exc_info is None
    assert "ConnectionRefusedError" in said[0].getMessage()
    assert "secret" not in said[0].getMessage()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_jobs_service_stops_while_waiting_for_nats(settings: Settings) -> None:
    stop = asyncio.Event()
    serving = asyncio.create_task(jobs_server.serve(_nowhere(settings), stop))
    await asyncio.sleep(2)
    assert not serving.done()  # waiting for NATS, as it should while NATS is down
    stop.set()
    await asyncio.wait_for(serving, 10)
