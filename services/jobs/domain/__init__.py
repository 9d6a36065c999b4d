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
from services.jobs.domain.fields import FieldSpec, from_dicts
from services.jobs.domain.golden import GoldenDocuments
from services.jobs.domain.ingest_reports import ArchiveEntry, FileAnalysis, IngestReports
from services.jobs.domain.metrics import refresh_forever
from services.jobs.domain.plan import FolderPlan, FolderRule
from services.jobs.domain.queries import JobQueries, JobWithFields, Progress
from services.jobs.domain.reconcile import QueueReconciler
from services.jobs.domain.rerun import RerunChoice, RerunOutcome, Reruns
from services.jobs.domain.result_versions import ResultVersions
from services.jobs.domain.results import Results
from services.jobs.domain.review import ReviewItem, Reviews
from services.jobs.domain.scoring import Scoring, score_state
from services.jobs.domain.status import (
    FileStatus,
    JobStatus,
    TaskMode,
    TaskStatus,
    can_transition,
    check_transition,
    move,
)
from services.jobs.domain.task_building import TaskBuilder
from services.jobs.domain.task_reports import (
    FailureReport,
    ResultReport,
    TaskInput,
    TaskReports,
    check_batch,
)
from services.jobs.domain.task_settling import TaskSettler
from services.jobs.domain.template_versions import Comparison, FieldComparison, TemplateVersions
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
    "watch_job",
]
