"""The jobs service's domain: what jobs, files, tasks, templates and users do. No gRPC here.

Imports `store` and `messaging`, never `api`. Callers use the names below.
"""

from services.jobs.domain import metrics, names, status
from services.jobs.domain.admin.cleanup import Cleanup, CleanupReport
from services.jobs.domain.admin.deadletters import DeadLetters
from services.jobs.domain.admin.operations import Admin, QueueSource, QueueStat
from services.jobs.domain.admin.operations import DeadLetter as AdminDeadLetter
from services.jobs.domain.admin.role import AdminRole
from services.jobs.domain.caller import caller_actor, caller_id, caller_id_or_none, set_caller
from services.jobs.domain.context import JobsContext
from services.jobs.domain.events import SYSTEM_ACTOR
from services.jobs.domain.export.exporter import Exporter
from services.jobs.domain.fields import FieldSpec, from_dicts
from services.jobs.domain.jobs.commands import Jobs
from services.jobs.domain.jobs.held_tasks import told_to_users
from services.jobs.domain.jobs.ingest_reports import ArchiveEntry, FileAnalysis, IngestReports
from services.jobs.domain.jobs.uploads import DeclaredFile, UploadTarget
from services.jobs.domain.jobs.watch import watch_job
from services.jobs.domain.metrics import refresh_forever
from services.jobs.domain.queries import JobQueries, JobWithFields, Progress
from services.jobs.domain.results.corrections import Results
from services.jobs.domain.results.golden import GoldenDocuments
from services.jobs.domain.results.review import ReviewItem, Reviews
from services.jobs.domain.results.scoring import Scoring, score_state
from services.jobs.domain.results.versions import ResultVersions
from services.jobs.domain.status import (
    FileStatus,
    JobStatus,
    TaskMode,
    TaskStatus,
    can_transition,
    check_transition,
    move,
)
from services.jobs.domain.tasks.building import TaskBuilder
from services.jobs.domain.tasks.inputs import TaskInput
from services.jobs.domain.tasks.plan import FolderPlan, FolderRule
from services.jobs.domain.tasks.reconcile import QueueReconciler
from services.jobs.domain.tasks.reports import (
    FailureReport,
    ResultReport,
    TaskReports,
    check_batch,
    superseded,
)
from services.jobs.domain.tasks.rerun import RerunChoice, RerunOutcome, Reruns
from services.jobs.domain.tasks.settling import TaskSettler
from services.jobs.domain.templates.library import Templates
from services.jobs.domain.templates.versions import Comparison, FieldComparison, TemplateVersions
from services.jobs.domain.users import Users

__all__ = [
    "SYSTEM_ACTOR",
    "Admin",
    "AdminDeadLetter",
    "AdminRole",
    "ArchiveEntry",
    "Cleanup",
    "CleanupReport",
    "Comparison",
    "DeadLetters",
    "DeclaredFile",
    "Exporter",
    "FailureReport",
    "FieldComparison",
    "FieldSpec",
    "FileAnalysis",
    "FileStatus",
    "FolderPlan",
    "FolderRule",
    "GoldenDocuments",
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
    "RerunChoice",
    "RerunOutcome",
    "Reruns",
    "ResultReport",
    "ResultVersions",
    "Results",
    "ReviewItem",
    "Reviews",
    "Scoring",
    "TaskBuilder",
    "TaskInput",
    "TaskMode",
    "TaskReports",
    "TaskSettler",
    "TaskStatus",
    "TemplateVersions",
    "Templates",
    "UploadTarget",
    "Users",
    "caller_actor",
    "caller_id",
    "caller_id_or_none",
    "can_transition",
    "check_batch",
    "check_transition",
    "from_dicts",
    "metrics",
    "move",
    "names",
    "refresh_forever",
    "score_state",
    "set_caller",
    "status",
    "superseded",
    "told_to_users",
    "watch_job",
]
