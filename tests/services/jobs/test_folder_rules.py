"""Per-folder task rules, the task plan, and the chosen system prompt, through the real jobs
service (gRPC) on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs.store import db, models
from tests.conftest import USER
from tests.identity import IdentityProvider
from tests.services.jobs.helpers import PDF, WORKER, upload

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

FIELDS = [pb.JobField(name="total", data_type="currency")]
COMBINED = pb.TASK_MODE_COMBINED
INDIVIDUAL = pb.TASK_MODE_INDIVIDUAL
PATHS = [
    "top.pdf",
    "a/x1.pdf",
    "a/x2.pdf",
    "a/sub/y1.pdf",
    "a/sub/y2.pdf",
    "b/z1.pdf",
    "b/z2.pdf",
    "deep/only/w.pdf",
]


async def tree_job(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, *, ready: bool = True
) -> str:
    """A job holding PATHS, analysed (READY) unless `ready` is False (then ANALYZING)."""
    created = await job_stub.CreateJob(
        jobs_pb.CreateJobRequest(
            files=[jobs_pb.DeclaredFile(path=p, size_bytes=len(PDF)) for p in PATHS]
        ),
        metadata=USER,
    )
    for target in created.upload_targets:
        upload(settings, target, PDF)
    await job_stub.FinalizeUploads(
        jobs_pb.FinalizeUploadsRequest(name=created.job.name), metadata=USER
    )
    targets = created.upload_targets if ready else created.upload_targets[1:]
    for target in targets:
        await worker_stub.ReportFileAnalysis(
            worker_pb.ReportFileAnalysisRequest(
                file=target.file,
                status=pb.SourceFile.READY,
                media_type="application/pdf",
                size_bytes=len(PDF),
                page_count=1,
            ),
            metadata=WORKER,
        )
    return str(created.job.name)


def rule(folder: str, mode: int) -> pb.FolderRule:
    return pb.FolderRule(folder=folder, task_mode=mode)  # type: ignore[arg-type]


async def configure(job_stub: JobStub, job: str, **kwargs: object) -> pb.Job:
    return await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(name=job, fields=FIELDS, **kwargs),  # type: ignore[arg-type]
        metadata=USER,
    )


async def test_deepest_rule_wins_and_the_plan_is_what_start_queues(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await tree_job(job_stub, worker_stub, settings)
    rules = [rule("a", COMBINED), rule("a/sub", INDIVIDUAL), rule("deep", COMBINED)]
    plan = await job_stub.PlanTasks(
        jobs_pb.PlanTasksRequest(name=job, task_mode=INDIVIDUAL, folder_rules=rules),
        metadata=USER,
    )
    # a: one task for its two files; a/sub: its own rule, one per file; deep/only: under
    # the combined rule on `deep` (no file directly in it), one task; the rest one each.
    assert [(f.folder, f.task_mode, f.file_count, f.task_count) for f in plan.folders] == [
        ("", INDIVIDUAL, 1, 1),
        ("a", COMBINED, 2, 1),
        ("a/sub", INDIVIDUAL, 2, 2),
        ("b", INDIVIDUAL, 2, 2),
        ("deep/only", COMBINED, 1, 1),
    ]
    assert (plan.task_count, plan.file_count) == (7, 8)

    configured = await configure(job_stub, job, task_mode=INDIVIDUAL, folder_rules=rules)
    assert list(configured.folder_rules) == rules
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert list(got.folder_rules) == rules
    started = await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert started.counters.tasks_total == plan.task_count
    tasks = (await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)).tasks
    by_folder: dict[str, list[tuple[int, int]]] = {}
    for t in tasks:
        by_folder.setdefault(t.folder, []).append((t.mode, len(t.files)))
    assert by_folder == {
        "": [(INDIVIDUAL, 1)],
        "a": [(COMBINED, 2)],
        "a/sub": [(INDIVIDUAL, 1), (INDIVIDUAL, 1)],
        "b": [(INDIVIDUAL, 1), (INDIVIDUAL, 1)],
        "deep/only": [(COMBINED, 1)],
    }


async def test_a_rule_overrides_a_combined_default(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await tree_job(job_stub, worker_stub, settings)
    await configure(job_stub, job, task_mode=COMBINED, folder_rules=[rule("b", INDIVIDUAL)])
    # The saved mode plans when the request leaves it unspecified.
    plan = await job_stub.PlanTasks(
        jobs_pb.PlanTasksRequest(name=job, folder_rules=[rule("b", INDIVIDUAL)]), metadata=USER
    )
    # "", a, a/sub, deep/only combined (4) + b's two files alone.
    assert plan.task_count == 6
    without = await job_stub.PlanTasks(jobs_pb.PlanTasksRequest(name=job), metadata=USER)
    assert without.task_count == 5
    started = await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert started.counters.tasks_total == 6


async def test_every_configure_sets_the_rules_afresh(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await tree_job(job_stub, worker_stub, settings)
    await configure(job_stub, job, folder_rules=[rule("a", COMBINED)])
    cleared = await configure(job_stub, job)
    assert list(cleared.folder_rules) == []
    started = await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert started.counters.tasks_total == len(PATHS)


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ([rule("nowhere", COMBINED)], "no usable file in folder 'nowhere'"),
        # A prefix of a folder's name is not a folder above it.
        ([rule("a/su", COMBINED)], "no usable file"),
        ([rule("", COMBINED)], "folder is empty"),
        ([rule("a", COMBINED), rule("a", INDIVIDUAL)], "has two rules"),
        ([rule("a", pb.TASK_MODE_UNSPECIFIED)], "task_mode must be"),
        ([rule("a", 7)], "task_mode: 7 is not a value"),  # refused by core.request_checks
    ],
)
async def test_bad_rules_are_invalid_arguments(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    rules: list[pb.FolderRule],
    words: str,
) -> None:
    job = await tree_job(job_stub, worker_stub, settings)
    for call in (
        configure(job_stub, job, folder_rules=rules),
        job_stub.PlanTasks(jobs_pb.PlanTasksRequest(name=job, folder_rules=rules), metadata=USER),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert words in (caught.value.details() or "")
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert list(got.folder_rules) == []


async def test_rules_wait_for_the_analysis(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await tree_job(job_stub, worker_stub, settings, ready=False)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await configure(job_stub, job, folder_rules=[rule("a", COMBINED)])
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Fields alone can be set while the files are analysed.
    await configure(job_stub, job)


async def test_another_users_folders_and_jobs_stay_hidden(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, idp: IdentityProvider
) -> None:
    job = await tree_job(job_stub, worker_stub, settings)
    other = (("authorization", f"Bearer {idp.token('someone-else')}"),)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await job_stub.PlanTasks(jobs_pb.PlanTasksRequest(name=job), metadata=other)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # Their own job, naming the first user's folder: the same answer as a made-up folder.
    created = await job_stub.CreateJob(
        jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="mine.pdf", size_bytes=9)]),
        metadata=other,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await job_stub.PlanTasks(
            jobs_pb.PlanTasksRequest(name=created.job.name, folder_rules=[rule("a", COMBINED)]),
            metadata=other,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no usable file in folder 'a'" in (caught.value.details() or "")


async def add_prompt(settings: Settings, text: str) -> str:
    """A second, inactive prompt version, as an administrator would add one."""
    engine = db.create_engine(settings.database_url)
    try:
        async with db.session_factory(engine).begin() as session:
            row = models.SystemPrompt(version=2, text=text, active=False)
            session.add(row)
        return f"systemPrompts/{row.id}"
    finally:
        await engine.dispose()


async def begin_first_task(job_stub: JobStub, worker_stub: WorkerStub, job: str) -> str:
    tasks = (await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)).tasks
    got = await worker_stub.BeginTask(
        worker_pb.BeginTaskRequest(task=tasks[0].name), metadata=WORKER
    )
    assert got.proceed
    return got.system_prompt.text


async def test_the_chosen_system_prompt_reaches_the_worker(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    channel: grpc.aio.Channel,
) -> None:
    prompt = await add_prompt(settings, "Read receipts carefully.")
    templates = jobs_grpc.TemplateServiceStub(channel)
    listed = await templates.ListSystemPrompts(jobs_pb.ListSystemPromptsRequest(), metadata=USER)
    assert prompt in [p.name for p in listed.system_prompts]
    job = await tree_job(job_stub, worker_stub, settings)
    configured = await configure(job_stub, job, system_prompt=prompt)
    assert configured.system_prompt == prompt
    await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert await begin_first_task(job_stub, worker_stub, job) == "Read receipts carefully."


async def test_without_a_choice_the_start_records_the_active_prompt(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    await add_prompt(settings, "not active")
    job = await tree_job(job_stub, worker_stub, settings)
    configured = await configure(job_stub, job)
    assert configured.system_prompt == ""
    started = await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert started.system_prompt.startswith("systemPrompts/")
    text = await begin_first_task(job_stub, worker_stub, job)
    assert "structured data" in text


@pytest.mark.parametrize(
    ("name", "code", "words"),
    [
        # Well formed, of no prompt: not found, as a template of nobody's is.
        ("systemPrompts/" + "0" * 32, grpc.StatusCode.NOT_FOUND, "does not exist"),
        ("systemPrompts/active", grpc.StatusCode.INVALID_ARGUMENT, "must look like"),
        ("templates/" + "0" * 32, grpc.StatusCode.INVALID_ARGUMENT, "must look like"),
    ],
)
async def test_an_unknown_system_prompt_is_refused(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    name: str,
    code: grpc.StatusCode,
    words: str,
) -> None:
    job = await tree_job(job_stub, worker_stub, settings)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await configure(job_stub, job, system_prompt=name)
    assert caught.value.code() == code
    assert words in (caught.value.details() or "")
