"""The jobs service: owns the database, the job state machine and the outbox.

Layers (docs/DESIGN.md, "The jobs service's layers"): `api` -> `domain` -> `store`, with
`messaging` beside the store; nothing imports upwards. Others use the names below.
"""

from services.jobs.server import (
    RunningJobsService,
    jobs_service,
    prepare_database,
    run_cleanup,
    serve,
)

__all__ = ["RunningJobsService", "jobs_service", "prepare_database", "run_cleanup", "serve"]
