"""Fair shares between tenants, and one model quota for all extract replicas (#18).

    .venv/bin/python bench/fair_share.py                 # big job of 1,000 tasks, quota run of 120
    .venv/bin/python bench/fair_share.py --big 10000     # the issue's 10,000-file job
    .venv/bin/python bench/fair_share.py --skip-quota    # part 1 only

Runs the real jobs service (SQLite, in this process), nats-server and 3 extract worker
replicas (`bytereview extract` processes, the Gemini backend against
tests/gemini_standin.py, one model call = --model-seconds); the ingest step is played by
reporting each file analysed.

1. Fair shares: tenant B's 5-file job, StartJob -> COMPLETED, alone; then again while
   tenant A's big job holds every slot; and tenant A's own 5-file job in that moment (one
   lane per tenant: within a tenant it is first in, first out, the way the whole queue was
   before). Target: B's time with the big job running <= 2x its time alone.
2. One quota: every replica configured with BYTEREVIEW_EXTRACT_RPM=60, the stand-in
   enforcing 60 requests/min over a sliding minute with 429s; a job of --quota-tasks.
   Prints the requests accepted per minute as a share of the quota, 429s and failed tasks.
   Target: >= 90% of the quota, 0 failed.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
import nats
from sqlalchemy import select

from bytereview.core import DEV_TOKEN, Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc, worker_service_pb2_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs import jobs_service
from services.jobs.domain import JobsContext
from services.jobs.domain.work import extract_message_id
from services.jobs.store import models
from tests.gemini_standin import API_KEY, GeminiStandIn, Reply, RunningStandIn, Seen
from tests.identity import AUDIENCE, ISSUER, identity_provider
from tests.pdfs import text_pdf
from tests.servers import nats_server
from tests.services.jobs.helpers import WORKER, upload

REPLICAS = 3
CONCURRENCY = 4
QUOTA_RPM = 60
FIELDS = [pb.JobField(name="total", data_type="currency")]
DONE = {pb.Job.COMPLETED, pb.Job.PARTIALLY_COMPLETED, pb.Job.FAILED, pb.Job.CANCELLED}
Metadata = tuple[tuple[str, str], ...]
# A text layer of at least MIN_TEXT_LAYER_CHARS (16): evidence verification reads it as it is.
# A thinner page ("Total: 1.00") is a scan to the extract worker, and OCR (~3 CPU-s a page)
# would be what the bench measured.
PDF = text_pdf(["Invoice number: INV-1", "Total: 1.00"])


@dataclasses.dataclass
class Bench:
    settings: Settings
    jobs: Any
    workers: Any
    standin: GeminiStandIn
    accepted_at: list[float]
    ctx: JobsContext


async def ready_job(bench: Bench, who: Metadata, files: int, name: str) -> str:
    """A job of `files` one-page PDFs, uploaded and reported analysed: READY."""
    created = await bench.jobs.CreateJob(
        jobs_pb.CreateJobRequest(
            display_name=name,
            files=[
                jobs_pb.DeclaredFile(path=f"{name}/{i}.pdf", size_bytes=len(PDF))
                for i in range(files)
            ],
        ),
        metadata=who,
    )
    for target in created.upload_targets:
        upload(bench.settings, target, PDF)
    await bench.jobs.FinalizeUploads(
        jobs_pb.FinalizeUploadsRequest(name=created.job.name), metadata=who
    )

    async def analysed(target: jobs_pb.UploadTarget) -> None:
        await bench.workers.ReportFileAnalysis(
            worker_pb.ReportFileAnalysisRequest(
                file=target.file,
                status=pb.SourceFile.READY,
                media_type="application/pdf",
                size_bytes=len(PDF),
                page_count=1,
            ),
            metadata=WORKER,
        )

    targets = list(created.upload_targets)
    for i in range(0, len(targets), 50):
        await asyncio.gather(*(analysed(t) for t in targets[i : i + 50]))
    await bench.jobs.ConfigureJob(
        jobs_pb.ConfigureJobRequest(name=created.job.name, fields=FIELDS), metadata=who
    )
    return str(created.job.name)


async def slots_in_use(settings: Settings) -> int:
    """Messages delivered to the extract workers and not yet acked, over every lane."""
    nc = await nats.connect(settings.nats_url)
    try:
        consumers = await nc.jetstream().consumers_info(settings.extract_stream)
        return sum(c.num_ack_pending for c in consumers)
    finally:
        await nc.close()


async def run_to_end(bench: Bench, who: Metadata, job: str) -> tuple[float, pb.Job]:
    """StartJob, then the seconds until the job finished."""
    started = time.monotonic()
    await bench.jobs.StartJob(jobs_pb.StartJobRequest(name=job), metadata=who)
    while True:
        got = await bench.jobs.GetJob(jobs_pb.GetJobRequest(name=job), metadata=who)
        if got.status in DONE:
            return time.monotonic() - started, got
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def replicas(settings: Settings, count: int, rpm: int = 0) -> Iterator[None]:
    """`count` extract worker replicas, each its own process (`bytereview extract`, as the
    chart runs it); the first also serves the ExtractService."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    processes = []
    for i in range(count):
        env = {
            **base,
            "BYTEREVIEW_ENV": "dev",
            "BYTEREVIEW_DATA_DIR": str(settings.data_dir),
            "BYTEREVIEW_STORAGE_DIR": str(settings.storage_dir),
            "BYTEREVIEW_NATS_URL": settings.nats_url,
            "BYTEREVIEW_JOBS_ADDR": settings.jobs_addr,
            "BYTEREVIEW_EXTRACT_ADDR": "127.0.0.1:0",
            "BYTEREVIEW_GEMINI_API_KEY": API_KEY,
            "BYTEREVIEW_GEMINI_BASE_URL": settings.gemini_base_url,
            "BYTEREVIEW_EXTRACT_CONCURRENCY": str(CONCURRENCY),
            "BYTEREVIEW_EXTRACT_RPM": str(rpm),
            "BYTEREVIEW_POD_NAME": f"extract-{i + 1}",
            "BYTEREVIEW_WORKER_ONLY": "true" if i else "false",
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "launcher.cli", "extract"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def fair_shares(
    bench: Bench,
    tenant_a: Metadata,
    tenant_b: Metadata,
    big: int,
    runs: int,
    *,
    same_tenant: bool,
) -> None:
    print(f"## fair shares: {REPLICAS} replicas x {CONCURRENCY} slots, big job {big} tasks")
    # Warm-up (replicas connecting, first imports): not measured.
    await run_to_end(bench, tenant_b, await ready_job(bench, tenant_b, 5, "warm-up"))
    alone: list[float] = []
    statuses: list[int] = []
    for i in range(runs):
        took, job = await run_to_end(bench, tenant_b, await ready_job(bench, tenant_b, 5, f"b{i}"))
        alone.append(took)
        statuses.append(job.status)
    big_job = await ready_job(bench, tenant_a, big, "big-a")
    small_b = [await ready_job(bench, tenant_b, 5, f"b-busy{i}") for i in range(runs)]
    small_a = await ready_job(bench, tenant_a, 5, "a-busy") if same_tenant else ""
    await bench.jobs.StartJob(jobs_pb.StartJobRequest(name=big_job), metadata=tenant_a)
    await asyncio.sleep(3)  # every slot busy with the big job
    progress = await bench.jobs.GetJob(jobs_pb.GetJobRequest(name=big_job), metadata=tenant_a)
    c = progress.counters
    left = c.tasks_total - c.tasks_succeeded - c.tasks_failed
    behind = asyncio.create_task(run_to_end(bench, tenant_a, small_a)) if small_a else None
    busy: list[float] = []
    waits: list[float] = []
    held: list[int] = []
    for job_name in small_b:  # one after the other, each while the big job holds the slots
        held.append(await slots_in_use(bench.settings))
        took, job = await run_to_end(bench, tenant_b, job_name)
        busy.append(took)
        waits.append(await outbox_wait(bench, job_name))
        statuses.append(job.status)
    progress = await bench.jobs.GetJob(jobs_pb.GetJobRequest(name=big_job), metadata=tenant_a)
    still = progress.counters.tasks_total - progress.counters.tasks_succeeded
    a, b = statistics.median(alone), statistics.median(busy)
    print(f"tenant B's 5-task job alone (median of {runs}):        {a:6.2f} s  {fmt(alone)}")
    print(
        f"tenant B's 5-task job, big job running (median):    {b:6.2f} s  {fmt(busy)}"
        f"  = {b / a:.2f}x alone (target <= 2x); big job still had {still} tasks to go"
    )
    print(f"  its task messages' longest wait in the outbox:               {fmt(waits)} s")
    # Whether the big job really held every slot as each small job started: a pool with idle
    # slots would serve the small job at once and flatter the ratio.
    print(f"  slots the big job held at each start: {held} of {REPLICAS * CONCURRENCY}")
    if behind is not None:
        same, job_a = await behind
        print(
            f"tenant A's own 5-task job started with them:     {same:9.2f} s  "
            f"({pb.Job.Status.Name(job_a.status)}; queued behind {left} of A's tasks: "
            "first in, first out within a tenant)"
        )
    print(f"tenant B's jobs: {', '.join(sorted({pb.Job.Status.Name(x) for x in statuses}))}")
    got = await bench.jobs.GetJob(jobs_pb.GetJobRequest(name=big_job), metadata=tenant_a)
    if got.status not in DONE:
        await bench.jobs.CancelJob(jobs_pb.CancelJobRequest(name=big_job), metadata=tenant_a)


async def outbox_wait(bench: Bench, job: str) -> float:
    """The longest any of the job's task messages waited in the outbox (committed -> sent):
    the relay's share of its time, apart from the workers'."""
    job_id = job.split("/")[1]
    async with bench.ctx.sessions() as session:
        tasks = (
            await session.scalars(select(models.Task).where(models.Task.job_id == job_id))
        ).all()
        rows = (
            await session.execute(
                select(models.OutboxMessage.created_at, models.OutboxMessage.sent_at).where(
                    models.OutboxMessage.id.in_([extract_message_id(t) for t in tasks])
                )
            )
        ).all()
    return max(
        (
            (models.as_utc(sent) - models.as_utc(made)).total_seconds()
            for made, sent in rows
            if sent
        ),
        default=0.0,
    )


def fmt(times: list[float]) -> str:
    return "(" + ", ".join(f"{t:.2f}" for t in times) + ")"


async def one_quota(bench: Bench, who: Metadata, tasks: int) -> None:
    print(f"## one quota: {REPLICAS} replicas, stand-in quota {QUOTA_RPM}/min, {tasks} tasks")
    job = await ready_job(bench, who, tasks, "quota")
    bench.accepted_at.clear()
    bench.standin.rejected = 0
    took, got = await run_to_end(bench, who, job)
    accepted = sorted(bench.accepted_at)
    span = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
    steady = (len(accepted) - 1) / span * 60 if span else 0.0
    overall = len(accepted) / took * 60
    c = got.counters
    print(
        f"job {pb.Job.Status.Name(got.status)} in {took:.1f} s: "
        f"{c.tasks_succeeded} succeeded, {c.tasks_failed} failed"
    )
    print(f"model requests accepted: {len(accepted)}, 429s answered: {bench.standin.rejected}")
    print(
        f"quota used, first to last request: {steady:5.1f}/min = {steady / QUOTA_RPM:6.1%}"
        f"  (target >= 90%)"
    )
    print(f"quota used, StartJob to COMPLETED: {overall:5.1f}/min = {overall / QUOTA_RPM:6.1%}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=1000)
    parser.add_argument("--quota-tasks", type=int, default=120)
    parser.add_argument("--model-seconds", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3, help="small jobs alone and while busy")
    parser.add_argument(
        "--no-same-tenant",
        action="store_true",
        help="skip the big job's tenant's small job (it waits for the whole big job)",
    )
    parser.add_argument("--skip-quota", action="store_true")
    parser.add_argument("--skip-fair", action="store_true")
    args = parser.parse_args()
    accepted_at: list[float] = []

    def answer(seen: Seen) -> Reply:
        accepted_at.append(time.monotonic())  # only calls inside the quota get here
        time.sleep(args.model_seconds)
        return Reply(values={"total": 1.0})

    standin = GeminiStandIn(default=answer)
    with (
        tempfile.TemporaryDirectory() as tmp,
        nats_server() as nats,
        identity_provider() as idp,
        RunningStandIn(standin) as gemini,
    ):
        settings = Settings(
            env="dev",
            data_dir=Path(tmp),
            storage_dir=Path(tmp) / "storage",
            nats_url=nats.url,
            jobs_addr="127.0.0.1:0",
            extract_addr="127.0.0.1:0",
            public_url="http://gateway.test",
            jwt_jwks_url=idp.jwks_url,
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            gemini_api_key=API_KEY,
            gemini_base_url=gemini.base_url,
            extract_concurrency=CONCURRENCY,
        )
        tenant_a: Metadata = (("authorization", f"Bearer {DEV_TOKEN}"),)
        tenant_b: Metadata = (
            ("authorization", f"Bearer {idp.token('tenant-b', expires_in=3600)}"),
        )
        async with jobs_service(settings) as service:
            worker_settings = settings.model_copy(update={"jobs_addr": f"127.0.0.1:{service.port}"})
            async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
                bench = Bench(
                    settings,
                    jobs_service_pb2_grpc.JobServiceStub(channel),
                    worker_service_pb2_grpc.JobWorkerServiceStub(channel),
                    standin,
                    accepted_at,
                    service.ctx,
                )
                if not args.skip_fair:
                    with replicas(worker_settings, REPLICAS):
                        await fair_shares(
                            bench,
                            tenant_a,
                            tenant_b,
                            args.big,
                            args.runs,
                            same_tenant=not args.no_same_tenant,
                        )
                if not args.skip_quota:
                    standin.quota_rpm = QUOTA_RPM
                    with replicas(worker_settings, REPLICAS, rpm=QUOTA_RPM):
                        await one_quota(bench, tenant_a, args.quota_tasks)


if __name__ == "__main__":
    asyncio.run(main())
