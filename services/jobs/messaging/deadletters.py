"""Dead letters: messages JetStream gave up on after MaxDeliver attempts.

A worker that crashes on a message (out of memory on a huge archive, killed mid-task)
never reports a failure, and after MaxDeliver deliveries JetStream stops trying. It then
publishes a MAX_DELIVERIES advisory; this monitor reads the message back, hands it to the
queue's handler (the domain records the failure on its file or task with a readable
error), and removes the message, so no job waits forever.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from bytereview.core import streams
from bytereview.core.errors import DomainError
from bytereview.core.outages import is_outage
from bytereview.core.worker_runtime import outlast

log = logging.getLogger(__name__)
ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"

# How every dead letter's recorded error begins: what the admin API lists as dead letters.
DEAD_LETTER_PREFIX = "gave up after "

# (the dead message's payload, why it died) -> the failure recorded.
DeadLetterHandler = Callable[[bytes, str], Awaitable[object]]


class DeadLetterMonitor:
    def __init__(
        self,
        *,
        nc: NatsClient,
        js: JetStreamContext,
        queues: Sequence[tuple[streams.QueueSpec, DeadLetterHandler]],
    ) -> None:
        self._nc = nc
        self._js = js
        self._queues = list(queues)
        self._handlers = {spec.stream: handler for spec, handler in queues}
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        for spec, _ in self._queues:
            # A queue group: with several jobs replicas, one of them handles each advisory.
            self._subs.append(
                await self._nc.subscribe(
                    # Every consumer of the stream: a fair queue has one per lane.
                    f"{ADVISORY}.{spec.stream}.{'*' if spec.fair else spec.durable}",
                    queue="bytereview-jobs",
                    cb=self._on_advisory,
                )
            )

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _on_advisory(self, msg: Msg) -> None:
        try:
            advisory = json.loads(msg.data)
            # The advisory comes once: while the database is down, wait for it (#17).
            await outlast(
                lambda: self.handle(
                    str(advisory["stream"]),
                    int(advisory["stream_seq"]),
                    int(advisory.get("deliveries", 0)),
                ),
                is_down=is_outage,
                what="the database (recording a dead letter)",
            )
        except Exception:
            log.exception("could not handle a dead-letter advisory")

    async def handle(self, stream: str, seq: int, deliveries: int) -> None:
        try:
            raw = await self._js.get_msg(stream, seq)
        except NotFoundError:
            return  # handled by another replica already
        why = (
            f"{DEAD_LETTER_PREFIX}{deliveries} attempts: the worker stopped (crashed, ran out of "
            "memory or timed out) every time it handled this"
        )
        handler = self._handlers.get(stream)
        try:
            if handler is not None:
                await handler(raw.data or b"", why)
        except DomainError as exc:
            log.warning("dead letter %s/%d: %s", stream, seq, exc.message)
        with contextlib.suppress(NotFoundError):
            await self._js.delete_msg(stream, seq)
        log.warning("dead letter %s/%d recorded: %s", stream, seq, why)
