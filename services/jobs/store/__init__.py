"""The jobs service's store: schema (`models`), engines and migrations (`db`), seed rows.

The bottom layer: it imports nothing else of the jobs service.
"""

from services.jobs.store import db, models
from services.jobs.store.seed import seed_database

__all__ = ["db", "models", "seed_database"]
