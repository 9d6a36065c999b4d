"""The jobs service's domain: what jobs, files, tasks, templates and users do. No gRPC here.

Imports `store` and `messaging`, never `api`. Callers use the names below.
"""

from services.jobs.domain import metrics, names, status
from services.jobs.domain.admin import Admin, QueueSource, QueueStat
from services.jobs.domain.admin import DeadLetter as AdminDeadLetter
from services.jobs.domain.admin_role import AdminRole
from services.jobs.domain.caller import caller_actor, caller_id, caller_id_or_none, set_caller
from services.jobs.domain.cleanup import Cleanup, CleanupReport
from services.jobs.domain.commands import Jobs
from services.jobs.domain.context import JobsContext
from services.jobs.domain.deadletters import DeadLetters
from services.jobs.domain.events import SYSTEM_ACTOR
from services.jobs.domain.export import Exporter
from services.jobs.domain.fields import FieldSpec
from services.jobs.domain.ingest_reports import ArchiveEntry, FileAnalysis, IngestReports
from services.jobs.domain.metrics import refresh_forever
from services.jobs.domain.queries import JobQueries, JobWithFields, Progress
from services.jobs.domain.reconcile import QueueReconciler
from services.jobs.domain.results import Results
from services.jobs.domain.review import ReviewItem, Reviews
from services.jobs.domain.status import (
    FileStatus,
    JobStatus,
    TaskMode,
    TaskStatus,
    can_transition,
    check_transition,
    move,
)
from services.jobs.domain.task_reports import TaskInput, TaskReports
from services.jobs.domain.templates import Templates
from services.jobs.domain.uploads import DeclaredFile, UploadTarget
from services.jobs.domain.users import Users
from services.jobs.domain.watch import watch_job

__all__ = [
    "SYSTEM_ACTOR",
    "Admin",
    "AdminDeadLetter",
    "AdminRole",
    "ArchiveEntry",
    "Cleanup",
    "CleanupReport",
    "DeadLetters",
    "DeclaredFile",
    "Exporter",
    "FieldSpec",
    "FileAnalysis",
    "FileStatus",
    "IngestReports",
    "JobQueries",
    "JobStatus",
    "JobWithFields",
    "Jobs",
    "JobsContext",
    "Progress",
    "QueueReconciler",
    "QueueSource",
    "QueueStat",
    "Results",
    "ReviewItem",
    "Reviews",
    "TaskInput",
    "TaskMode",
    "TaskReports",
    "TaskStatus",
    "Templates",
    "UploadTarget",
    "Users",
    "caller_actor",
    "caller_id",
    "caller_id_or_none",
    "can_transition",
    "check_transition",
    "metrics",
    "move",
    "names",
    "refresh_forever",
    "set_caller",
    "status",
    "watch_job",
]
