"""Messaging of the jobs service: the transactional outbox, the event hub, dead letters,
the work queues' state.

Beside the store: it may import `store` (outbox rows), never `domain` or `api`.
"""

from services.jobs.messaging.deadletters import (
    DEAD_LETTER_PREFIX,
    DeadLetterHandler,
    DeadLetterMonitor,
)
from services.jobs.messaging.hub import EventHub
from services.jobs.messaging.outbox import OutboxRelay, enqueue, enqueue_many
from services.jobs.messaging.queues import QueueStat, WorkerLoads, WorkerSeen, queue_stat

__all__ = [
    "DEAD_LETTER_PREFIX",
    "DeadLetterHandler",
    "DeadLetterMonitor",
    "EventHub",
    "OutboxRelay",
    "QueueStat",
    "WorkerLoads",
    "WorkerSeen",
    "enqueue",
    "enqueue_many",
    "queue_stat",
]
