"""proto <-> domain, both directions, for every servicer of the jobs service.

No logic beyond translation: rows and domain values become messages, request messages
become the domain's arguments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from bytereview.core.errors import InvalidArgument
from bytereview.core.fields import field_spec as _field_spec
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs.domain import (
    ArchiveEntry,
    Comparison,
    DeclaredFile,
    FieldSpec,
    FileAnalysis,
    FolderPlan,
    FolderRule,
    Progress,
    ReviewItem,
    TaskInput,
    UploadTarget,
    from_dicts,
    names,
    score_state,
)
from services.jobs.domain.results import etags
from services.jobs.domain.results.review import value_name
from services.jobs.domain.status import TaskStatus
from services.jobs.store import models

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# models.Task.failure as the API names it; anything else (none recorded) is unspecified.
_FAILURES = frozenset(pb.Task.Failure.keys()) - {"FAILURE_UNSPECIFIED"}


def ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    # By hand: Timestamp.FromDatetime is pure Python and a visible cost of ListJobs.
    since = models.as_utc(value) - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1_000
    )


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def counters(job: models.Job) -> pb.JobCounters:
    return pb.JobCounters(
        files_total=job.files_total,
        files_ready=job.files_ready,
        files_failed=job.files_failed,
        tasks_total=job.tasks_total,
        tasks_succeeded=job.tasks_succeeded,
        tasks_failed=job.tasks_failed,
        values_needing_review=job.values_needing_review or 0,
    )


# -- domain -> proto ---------------------------------------------------------------------


def job(row: models.Job, fields: Sequence[FieldSpec]) -> pb.Job:
    return pb.Job(
        name=names.job_name(row.id),
        display_name=row.display_name,
        owner=names.user_name(row.user_id),
        status=pb.Job.Status.Value(row.status),
        template=names.template_name(row.template_id) if row.template_id else "",
        persist_data=row.persist_data,
        task_mode=pb.TaskMode.Value(row.task_mode),
        fields=[field_spec(f) for f in fields],
        create_time=ts(row.created_at),
        update_time=ts(row.updated_at),
        start_time=ts(row.started_at),
        end_time=ts(row.finished_at),
        counters=counters(row),
        folder_rules=[
            pb.FolderRule(folder=r["folder"], task_mode=pb.TaskMode.Value(r["task_mode"]))
            for r in row.folder_rules
        ],
        system_prompt=f"systemPrompts/{row.system_prompt_id}" if row.system_prompt_id else "",
        template_version=(
            names.template_version_name(row.template_id, row.template_version)
            if row.template_id and row.template_version
            else ""
        ),
    )


def field_spec(spec: FieldSpec) -> pb.JobField:
    return pb.JobField(name=spec.name, data_type=spec.data_type, instruction=spec.instruction)


def source_file(row: models.SourceFile) -> pb.SourceFile:
    return pb.SourceFile(
        name=names.file_name(row.job_id, row.id),
        original_path=row.original_path,
        parent_archive=names.file_name(row.job_id, row.parent_id) if row.parent_id else "",
        status=pb.SourceFile.Status.Value(row.status),
        media_type=row.media_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        page_count=row.page_count,
        width=row.width,
        height=row.height,
        error=row.error,
        create_time=ts(row.created_at),
        folder=row.folder,
    )


def task(row: models.Task, file_ids: Sequence[str]) -> pb.Task:
    return pb.Task(
        name=names.task_name(row.job_id, row.id),
        mode=pb.TaskMode.Value(row.mode),
        status=pb.Task.Status.Value(row.status),
        files=[names.file_name(row.job_id, f) for f in file_ids],
        attempts=row.attempts,
        last_error=row.last_error,
        start_time=ts(row.started_at),
        end_time=ts(row.finished_at),
        folder=row.folder,
        # Recorded with the last failure; a task queued again since is no longer FAILED.
        failure=pb.Task.Failure.Value(row.failure)
        if row.status == TaskStatus.FAILED and row.failure in _FAILURES
        else pb.Task.FAILURE_UNSPECIFIED,
    )


def result(row: models.Result, files: Sequence[tuple[str, str]]) -> pb.Result:
    return pb.Result(
        name=names.result_name(row.job_id, row.id),
        task=names.task_name(row.job_id, row.task_id),
        files=[names.file_name(row.job_id, f) for f, _ in files],
        file_paths=[p for _, p in files],
        values=struct(row.values),
        value_sources={k: str(v) for k, v in row.value_sources.items()},
        edited=row.edited,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        extractor=row.extractor,
        create_time=ts(row.created_at),
        update_time=ts(row.updated_at),
        version=row.version,
        etag=etags.etag(row.version),
        corrected_fields=row.corrected_fields,
        assessments={k: assessment(v) for k, v in (row.assessments or {}).items()},
        values_needing_review=row.review_count or 0,
        skipped_files=[skipped_file(row.job_id, s) for s in row.skipped_files or []],
    )


def skipped_file(job_id: str, stored: Mapping[str, str]) -> pb.SkippedFile:
    file_id = stored.get("file", "")
    return pb.SkippedFile(
        file=names.file_name(job_id, file_id) if file_id else "",
        path=stored.get("path", ""),
        reason=stored.get("reason", ""),
    )


def skipped_files_in(messages: Iterable[pb.SkippedFile]) -> list[dict[str, str]]:
    """A worker's skipped files as plain data for the domain (which bounds them): the file
    by id ('' when the name is not a file's), its path and why."""
    out = []
    for message in messages:
        try:
            file_id = names.parse("file", message.file)["file"]
        except InvalidArgument:
            file_id = ""
        out.append({"file": file_id, "path": message.path, "reason": message.reason})
    return out


def assessment(stored: dict[str, Any]) -> pb.ValueAssessment:
    """A stored assessment (review.clean's shape) as its message."""
    out = pb.ValueAssessment(
        confidence=float(stored.get("confidence", 0.0)),
        verified=bool(stored.get("verified", False)),
        reviewed=bool(stored.get("reviewed", False)),
        needs_review=bool(stored.get("needs_review", False)),
        problem=str(stored.get("problem", "")),
    )
    evidence = stored.get("evidence")
    if evidence:
        out.evidence.file = evidence.get("file", "")
        out.evidence.page = int(evidence.get("page", 0))
        out.evidence.quote = evidence.get("quote", "")
        if evidence.get("box"):
            out.evidence.box.CopyFrom(pb.BoundingBox(**evidence["box"]))
    return out


def assessments_in(messages: Mapping[str, pb.ValueAssessment]) -> dict[str, dict[str, Any]]:
    """A worker's assessments as plain data for the domain (which bounds them)."""
    return {
        field: json_format.MessageToDict(message, preserving_proto_field_name=True)
        for field, message in messages.items()
    }


def review_item(item: ReviewItem, paths: Sequence[str]) -> pb.ReviewItem:
    out = pb.ReviewItem(
        name=value_name(item.job_id, item.result_id, item.field),
        result=names.result_name(item.job_id, item.result_id),
        field=item.field,
        data_type=item.data_type,
        assessment=assessment(item.assessment),
        reasons=item.reasons,
        impact=item.impact,
        file_paths=paths,
        etag=etags.etag(item.version),
    )
    json_format.ParseDict(item.value, out.value)
    return out


def event(row: models.JobEvent, job_row: models.Job | None = None) -> pb.JobEvent:
    message = pb.JobEvent(
        sequence=row.sequence,
        job=names.job_name(row.job_id),
        kind=row.kind,
        actor=row.actor,
        subject=row.subject,
        from_status=row.from_status,
        to_status=row.to_status,
        message=row.message,
        create_time=ts(row.created_at),
    )
    if job_row is not None:
        message.job_status = pb.Job.Status.Value(job_row.status)
        message.counters.CopyFrom(counters(job_row))
    return message


def template(row: models.Template) -> pb.Template:
    return pb.Template(
        name=names.template_name(row.id),
        display_name=row.display_name,
        description=row.description,
        fields=[
            pb.JobField(name=f.name, data_type=f.data_type_id, instruction=f.instruction)
            for f in row.fields
        ],
        create_time=ts(row.created_at),
        update_time=ts(row.updated_at),
        current_version=names.template_version_name(row.id, row.version),
    )


def data_type(row: models.DataType) -> pb.DataType:
    return pb.DataType(
        name=f"dataTypes/{row.id}",
        id=row.id,
        display_name=row.display_name,
        json_type=row.json_type,
        format=row.format,
        description=row.description,
    )


def system_prompt(row: models.SystemPrompt) -> pb.SystemPrompt:
    return pb.SystemPrompt(
        name=f"systemPrompts/{row.id}",
        version=row.version,
        text=row.text,
        active=row.active,
        create_time=ts(row.created_at),
    )


def user(row: models.User) -> pb.User:
    return pb.User(
        name=names.user_name(row.id),
        email=row.email,
        display_name=row.display_name,
        create_time=ts(row.created_at),
        last_seen_time=ts(row.last_seen_at),
    )


def api_key(row: models.ApiKey, secret: str = "") -> pb.ApiKey:
    return pb.ApiKey(
        name=names.api_key_name(row.user_id, row.id),
        display_name=row.display_name,
        key=secret,
        prefix=row.prefix,
        create_time=ts(row.created_at),
        last_used_time=ts(row.last_used_at),
    )


def upload_target(job_id: str, target: UploadTarget) -> jobs_pb.UploadTarget:
    return jobs_pb.UploadTarget(
        file=names.file_name(job_id, target.file_id),
        path=target.path,
        method=target.request.method,
        url=target.request.url,
        headers=target.request.headers,
        expire_time=ts(target.request.expire_time),
    )


def progress(name: str, found: Progress) -> jobs_pb.JobProgress:
    return jobs_pb.JobProgress(
        job=name,
        status=pb.Job.Status.Value(found.job.status),
        files_by_status=found.files_by_status,
        tasks_by_status=found.tasks_by_status,
        counters=counters(found.job),
        analysis_done=found.analysis_done,
    )


def task_file(row: models.SourceFile) -> worker_pb.TaskFile:
    return worker_pb.TaskFile(
        name=names.file_name(row.job_id, row.id),
        original_path=row.original_path,
        storage_key=row.storage_key,
        media_type=row.media_type,
        page_count=row.page_count,
        status=pb.SourceFile.Status.Value(row.status),
        error=row.error,
    )


def task_input(got: TaskInput) -> worker_pb.BeginTaskResponse:
    if not got.proceed or got.task is None:
        return worker_pb.BeginTaskResponse(proceed=False, reason=got.reason)
    return worker_pb.BeginTaskResponse(
        proceed=True,
        task=task(got.task, [f.id for f in got.files]),
        fields=[
            pb.JobField(name=f.name, data_type=f.data_type_id, instruction=f.instruction)
            for f in got.fields
        ],
        data_types=[data_type(d) for d in got.data_types],
        files=[task_file(f) for f in got.files],
        system_prompt=system_prompt(got.system_prompt) if got.system_prompt else None,
    )


# -- proto -> domain ---------------------------------------------------------------------


def field_specs(fields: Iterable[pb.JobField]) -> list[FieldSpec]:
    return [_field_spec(f.name, f.data_type, f.instruction) for f in fields]


def task_mode_name(value: int) -> str:
    """The enum value's name; an unknown number (a raw gRPC client may send one) as itself,
    for the domain to refuse."""
    if value in pb.TaskMode.values():
        return pb.TaskMode.Name(pb.TaskMode.ValueType(value))
    return str(value)


def folder_rules(rules: Iterable[pb.FolderRule]) -> list[FolderRule]:
    return [FolderRule(r.folder, task_mode_name(r.task_mode)) for r in rules]


def task_plan(file_count: int, folders: Sequence[FolderPlan]) -> jobs_pb.TaskPlan:
    return jobs_pb.TaskPlan(
        task_count=sum(f.task_count for f in folders),
        file_count=file_count,
        folders=[
            jobs_pb.FolderPlan(
                folder=f.folder,
                task_mode=pb.TaskMode.Value(f.mode),
                file_count=f.file_count,
                task_count=f.task_count,
            )
            for f in folders
        ],
    )


def declared_files(files: Iterable[jobs_pb.DeclaredFile]) -> list[DeclaredFile]:
    return [DeclaredFile(f.path, f.size_bytes, f.content_type) for f in files]


def analysis(
    message: worker_pb.ReportFileAnalysisRequest | worker_pb.ArchiveEntry,
) -> FileAnalysis:
    if message.status not in pb.SourceFile.Status.values():
        # An open enum: a number this server does not know (Name() raised ValueError).
        raise InvalidArgument(f"status {message.status} is not a file status")
    return FileAnalysis(
        status=pb.SourceFile.Status.Name(message.status),
        media_type=message.media_type,
        size_bytes=message.size_bytes,
        sha256=message.sha256,
        page_count=message.page_count,
        width=getattr(message, "width", 0),
        height=getattr(message, "height", 0),
        error=message.error,
    )


def archive_entries(entries: Iterable[worker_pb.ArchiveEntry]) -> list[ArchiveEntry]:
    return [
        ArchiveEntry(
            index=e.index,
            path=e.path,
            storage_key=e.storage_key,
            size_bytes=e.size_bytes,
            analysis=analysis(e) if e.status else None,
        )
        for e in entries
    ]


def values(message: struct_pb2.Struct) -> dict[str, Any]:
    try:
        return json_format.MessageToDict(message)
    except ValueError as exc:
        # A NaN or Infinity number: JSON has none (json_format refuses; it was INTERNAL).
        raise InvalidArgument(f"values must be finite numbers: {exc}") from exc


# -- versions, golden documents, scores (#16) ---------------------------------------------


def _value(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(value, out)
    return out


def result_version(job_id: str, row: models.ResultVersion) -> pb.ResultVersion:
    return pb.ResultVersion(
        name=names.result_version_name(job_id, row.result_id, row.version),
        version=row.version,
        kind=pb.ResultVersion.Kind.Value(row.kind),
        values=struct(row.values),
        changes=[
            pb.ValueChange(field=c["field"], old_value=_value(c["old"]), new_value=_value(c["new"]))
            for c in row.changes
        ],
        actor=row.actor,
        reason=row.reason,
        restored_version=row.restored_version,
        template_version=(
            names.template_version_name(row.template_id, row.template_version)
            if row.template_id and row.template_version
            else ""
        ),
        create_time=ts(row.created_at),
    )


def template_score(row: models.TemplateVersion, run: models.Job | None) -> pb.TemplateScore | None:
    state, error = score_state(row, run)
    if not state:
        return None
    return pb.TemplateScore(
        state=pb.TemplateScore.State.Value(state),
        accuracy=row.score_accuracy or 0.0,
        golden_documents=len(row.score_expected),
        values_compared=row.score_compared,
        values_correct=row.score_correct,
        field_scores=[
            pb.FieldScore(
                field=name,
                compared=compared,
                correct=correct,
                accuracy=correct / compared if compared else 0.0,
            )
            for name, (compared, correct) in row.score_fields.items()
        ],
        job=names.job_name(row.score_job_id) if row.score_job_id else "",
        start_time=ts(row.score_started_at),
        end_time=ts(row.score_finished_at),
        error=error,
    )


def template_version(row: models.TemplateVersion, run: models.Job | None) -> pb.TemplateVersion:
    return pb.TemplateVersion(
        name=names.template_version_name(row.template_id, row.version),
        version=row.version,
        fields=[field_spec(f) for f in from_dicts(row.fields)],
        create_time=ts(row.created_at),
        score=template_score(row, run),
    )


def golden_document(row: models.GoldenDocument, paths: Sequence[str]) -> pb.GoldenDocument:
    return pb.GoldenDocument(
        name=names.golden_document_name(row.template_id, row.id),
        result=names.result_name(row.job_id, row.result_id),
        expected_values=struct(row.values),
        file_paths=list(paths),
        create_time=ts(row.created_at),
    )


def comparison(
    found: Comparison, base_run: models.Job | None, run: models.Job | None
) -> jobs_pb.CompareTemplateVersionsResponse:
    out = jobs_pb.CompareTemplateVersionsResponse(
        base=template_version(found.base, base_run),
        version=template_version(found.version, run),
    )
    for f in found.fields:
        item = out.fields.add(field=f.field)
        if f.base is not None:
            item.base.CopyFrom(field_spec(f.base))
        if f.current is not None:
            item.current.CopyFrom(field_spec(f.current))
        if f.base_accuracy is not None:
            item.base_accuracy = f.base_accuracy
        if f.accuracy is not None:
            item.accuracy = f.accuracy
    if out.base.score.state == pb.TemplateScore.SUCCEEDED == out.version.score.state:
        out.accuracy_change = out.version.score.accuracy - out.base.score.accuracy
    return out
