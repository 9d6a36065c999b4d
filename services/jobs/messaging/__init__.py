"""Messaging of the jobs service: the transactional outbox, the event hub, dead letters.

Beside the store: it may import `store` (outbox rows), never `domain` or `api`.
"""

from services.jobs.messaging.deadletters import DeadLetterHandler, DeadLetterMonitor
from services.jobs.messaging.hub import EventHub
from services.jobs.messaging.outbox import OutboxRelay, enqueue

__all__ = ["DeadLetterHandler", "DeadLetterMonitor", "EventHub", "OutboxRelay", "enqueue"]
