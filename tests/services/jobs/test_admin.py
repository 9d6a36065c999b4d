"""AdminService (#17, "The operator's view"): the admin role, every tenant's jobs, the dead
letters with retry and discard, the queues; on the real jobs service, NATS and databases."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tracemalloc
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import httpx
import nats
import pytest
from fastapi import FastAPI
from google.protobuf import struct_pb2

from bytereview.core import streams
from bytereview.core.auth import DEV_SUBJECT, WORKER, Principal, PrincipalKind
from bytereview.core.fair_pull import FairPuller
from bytereview.core.settings import Settings
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.jobs.v1 import admin_service_pb2 as admin_pb
from bytereview.jobs.v1 import admin_service_pb2_grpc as admin_grpc
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from gateway import create_app
from gateway.transcoder import VARIABLE, routes_for
from services.jobs import RunningJobsService
from services.jobs.domain import AdminRole
from services.jobs.domain.pages import keyset
from services.jobs.messaging import WorkerLoads, WorkerSeen
from services.jobs.messaging.queues import WORKER_GONE_AFTER
from tests.conftest import USER
from tests.identity import IdentityProvider
from tests.services.jobs.helpers import PDF, create_uploaded, pull, ready_job
from tests.services.jobs.helpers import WORKER as WORKER_METADATA

if TYPE_CHECKING:
    from bytereview.jobs.v1.admin_service_pb2_grpc import AdminServiceAsyncStub as AdminStub
    from tests.services.jobs.helpers import JobStub, WorkerStub

ADMIN_SERVICE = admin_pb.DESCRIPTOR.services_by_name["AdminService"]
ADMIN_ROLE = "bytereview-admin"
# The admin role comes from a claim here; the dev token is an admin too (dev mode).
pytestmark = pytest.mark.settings(admin_claim=f"roles={ADMIN_ROLE}", max_deliver=1)
# The dead-letter tests wait for the ack wait to run out: 2 s, not the suite's 5 (a worker
# begins its task well within it).
DEAD_LETTERING = pytest.mark.settings(
    admin_claim=f"roles={ADMIN_ROLE}", max_deliver=1, ack_wait_seconds=2
)
FIELDS = [pb.JobField(name="number", data_type="text")]
AN_ID = "0123456789abcdef0123456789abcdef"
MB = 1024 * 1024


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def admin_stub(channel: grpc.aio.Channel) -> AdminStub:
    return admin_grpc.AdminServiceStub(channel)


@pytest.fixture
def admin(idp: IdentityProvider) -> tuple[tuple[str, str], ...]:
    return _bearer(idp.token("root", roles=[ADMIN_ROLE, "other"]))


@pytest.fixture
async def client(settings: Settings, jobs: RunningJobsService) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings.model_copy(update={"jobs_addr": f"127.0.0.1:{jobs.port}"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            yield c


def _non_admins(idp: IdentityProvider) -> dict[str, tuple[tuple[str, str], ...]]:
    return {
        "a user": idp.metadata("alice"),
        "a user with other roles": _bearer(idp.token("bob", roles=["viewer"])),
        "a user with the role in another claim": _bearer(idp.token("eve", groups=[ADMIN_ROLE])),
        "a worker": WORKER_METADATA,
    }


# -- the role ---------------------------------------------------------------------------


def test_the_admin_role_comes_from_the_claim_or_the_subjects_never_an_api_key() -> None:
    role = AdminRole.from_settings(
        Settings(env="dev", admin_claim="realm_access.roles=ops", admin_subjects=["iss|carol"])
    )
    user = PrincipalKind.USER
    assert role.grants(Principal(user, "iss|a", claims={"realm_access": {"roles": ["ops"]}}))
    assert not role.grants(Principal(user, "iss|a", claims={"realm_access": {"roles": ["x"]}}))
    assert not role.grants(Principal(user, "iss|a", claims={"roles": ["ops"]}))
    assert role.grants(Principal(user, "iss|carol"))
    assert role.grants(Principal(user, DEV_SUBJECT))  # dev mode: the dev user
    # An API key's principal carries its user id: never admin, whoever owns it.
    assert not role.grants(Principal(user, "iss|carol", user_id=AN_ID))
    assert not role.grants(WORKER)
    scopes = AdminRole.from_settings(Settings(env="dev", admin_claim="scope=admin"))
    assert scopes.grants(Principal(user, "iss|a", claims={"scope": "read admin"}))
    assert not scopes.grants(Principal(user, "iss|a", claims={"scope": "administrator"}))


def test_outside_dev_mode_the_dev_subject_is_no_admin() -> None:
    production = Settings(
        env="production", signing_secret="s" * 20, worker_token="w" * 20, admin_claim="roles=a"
    )
    assert not AdminRole.from_settings(production).grants(Principal(PrincipalKind.USER, "dev"))


def test_a_malformed_admin_claim_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="claim=value"):
        Settings(env="dev", admin_claim="roles")


# -- nobody else gets in ------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("method", [m.name for m in ADMIN_SERVICE.methods])
async def test_every_admin_method_refuses_a_non_admin_over_grpc(
    admin_stub: AdminStub, idp: IdentityProvider, method: str
) -> None:
    request = getattr(admin_pb, ADMIN_SERVICE.methods_by_name[method].input_type.name)()
    for who, metadata in _non_admins(idp).items():
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await getattr(admin_stub, method)(request, metadata=metadata)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, who
        assert "admin role" in (err.value.details() or ""), who


def _admin_routes() -> list[tuple[str, str, str]]:
    """(method, verb, a concrete path) for every HTTP binding of AdminService."""
    out = []
    for route in routes_for(ADMIN_SERVICE, "jobs"):
        path = VARIABLE.sub(
            lambda m: (m.group(2) or "*").replace("*", AN_ID), route.template
        )  # `{name=jobs/*/tasks/*}` -> jobs/<id>/tasks/<id>
        out.append((route.method.name, route.verb, path))
    return out


def test_every_admin_method_has_a_rest_route() -> None:
    assert {m for m, _, _ in _admin_routes()} == {m.name for m in ADMIN_SERVICE.methods}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("method", "verb", "path"), _admin_routes())
async def test_every_admin_route_refuses_a_non_admin_over_rest(
    client: httpx.AsyncClient, idp: IdentityProvider, method: str, verb: str, path: str
) -> None:
    for who, metadata in _non_admins(idp).items():
        headers = dict(metadata)
        response = await client.request(
            verb, path, headers=headers, json={} if verb == "POST" else None
        )
        # The public gateway refuses a worker credential outright (#14): 401 before any
        # service sees it; every user credential without the role is a 403.
        expected = 401 if who == "a worker" else 403
        assert response.status_code == expected, (method, who, response.text)


# -- every tenant's jobs ------------------------------------------------------------------


async def test_an_admin_lists_every_tenants_jobs_filtered_by_status_and_age(
    admin_stub: AdminStub,
    job_stub: JobStub,
    settings: Settings,
    idp: IdentityProvider,
    admin: tuple[tuple[str, str], ...],
    client: httpx.AsyncClient,
) -> None:
    alice = idp.metadata("alice")
    created = await create_uploaded(job_stub, settings, alice, {"a.pdf": PDF})
    mine = await create_uploaded(job_stub, settings, USER, {"b.pdf": PDF})
    found = await admin_stub.ListAllJobs(admin_pb.ListAllJobsRequest(), metadata=admin)
    by_name = {j.name: j for j in found.jobs}
    assert {created.job.name, mine.job.name} <= set(by_name)
    assert by_name[created.job.name].owner == created.job.owner  # the owner is shown
    assert by_name[created.job.name].owner != by_name[mine.job.name].owner
    # Alice herself sees only her own job.
    own = await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=alice)
    assert [j.name for j in own.jobs] == [created.job.name]

    pending = await admin_stub.ListAllJobs(
        admin_pb.ListAllJobsRequest(statuses=[pb.Job.PENDING_UPLOAD], owner=created.job.owner),
        metadata=admin,
    )
    assert [j.name for j in pending.jobs] == [created.job.name]
    running = await admin_stub.ListAllJobs(
        admin_pb.ListAllJobsRequest(statuses=[pb.Job.RUNNING, pb.Job.QUEUED]), metadata=admin
    )
    assert running.jobs == []
    old = await admin_stub.ListAllJobs(
        admin_pb.ListAllJobsRequest(min_age_seconds=3600), metadata=admin
    )
    assert old.jobs == []
    one = await admin_stub.ListAllJobs(admin_pb.ListAllJobsRequest(page_size=1), metadata=admin)
    assert len(one.jobs) == 1
    assert one.next_page_token
    assert one.total_size == 2
    rest = await admin_stub.ListAllJobs(
        admin_pb.ListAllJobsRequest(page_size=1, page_token=one.next_page_token), metadata=admin
    )
    assert {one.jobs[0].name, rest.jobs[0].name} == {created.job.name, mine.job.name}
    # Negative, and so old that the cut-off would fall before year 1 (was an OverflowError).
    for age in (-1, 454584364380):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await admin_stub.ListAllJobs(
                admin_pb.ListAllJobsRequest(min_age_seconds=age), metadata=admin
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # The same over REST, the statuses repeated in the query.
    response = await client.get(
        "/v1/admin/jobs",
        params=[("statuses", "PENDING_UPLOAD"), ("statuses", "RUNNING")],
        headers=dict(admin),
    )
    assert response.status_code == 200, response.text
    assert {j["name"] for j in response.json()["jobs"]} == {created.job.name, mine.job.name}


# -- dead letters -------------------------------------------------------------------------


async def _dead_letter_a_task(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> tuple[str, str]:
    """A job of one task whose worker dies holding it until JetStream gives up (MaxDeliver
    1): the dead-letter monitor fails the task and the job. Returns (job, task)."""
    job = await ready_job(job_stub, worker_stub, settings, files=1)
    await job_stub.ConfigureJob(jobs_pb.ConfigureJobRequest(name=job, fields=FIELDS), metadata=USER)
    await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    spec = streams.extract_queue(settings)
    nc = await nats.connect(settings.nats_url)
    try:
        # The extract queue has a lane per tenant: pull it the way its workers do.
        puller = FairPuller(nc=nc, js=nc.jetstream(), spec=spec)
        msgs = await puller.fetch(1, (), wait=30)
        task = extract_messages.ExtractTaskMessage.FromString(msgs[0].data).task
        await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER_METADATA)
        # ... and dies: no ack. A worker still pulling makes JetStream notice the exhaustion
        # once the ack wait (2 s) ran out; pulling goes on until the job is FAILED (it went
        # on for a fixed 8 s before, then polled).
        for _ in range(40):
            await puller.fetch(1, (), wait=0.5)
            got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
            if got.status == pb.Job.FAILED:
                break
    finally:
        await nc.close()
    assert got.status == pb.Job.FAILED
    return job, task


@DEAD_LETTERING
async def test_an_admin_retry_of_a_dead_lettered_task_completes_it(
    channel: grpc.aio.Channel,
    admin_stub: AdminStub,
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    admin: tuple[tuple[str, str], ...],
    client: httpx.AsyncClient,
) -> None:
    job, task = await _dead_letter_a_task(job_stub, worker_stub, settings)
    letters = await admin_stub.ListDeadLetters(admin_pb.ListDeadLettersRequest(), metadata=admin)
    assert [d.name for d in letters.dead_letters] == [task]
    letter = letters.dead_letters[0]
    assert letter.job == job
    assert letter.job_status == pb.Job.FAILED
    assert letter.error.startswith("gave up after 1 attempts")
    assert letter.attempts == 1
    tasks = await admin_stub.ListJobTasks(
        admin_pb.ListJobTasksRequest(parent=job, statuses=[pb.Task.FAILED]), metadata=admin
    )
    assert [(t.name, t.attempts) for t in tasks.tasks] == [(task, 1)]
    assert tasks.tasks[0].last_error == letter.error
    assert tasks.tasks[0].files

    # Over REST, as an operator's script would.
    response = await client.post(
        f"/v1/admin/{task}:retry", json={"reason": "the pdfium fix is out"}, headers=dict(admin)
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == task
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status == pb.Job.QUEUED
    assert (
        await admin_stub.ListDeadLetters(admin_pb.ListDeadLettersRequest(), metadata=admin)
    ).dead_letters == []
    # Retrying it again is refused: it is no dead letter any more.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await admin_stub.RetryDeadLetter(admin_pb.RetryDeadLetterRequest(name=task), metadata=admin)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # The task runs again, as a worker would run it, and gets its result.
    [data] = await pull(settings, streams.extract_queue(settings), 1)
    assert extract_messages.ExtractTaskMessage.FromString(data).task == task
    begun = await worker_stub.BeginTask(
        worker_pb.BeginTaskRequest(task=task), metadata=WORKER_METADATA
    )
    assert begun.proceed
    assert begun.task.attempts == 1
    values = struct_pb2.Struct()
    values.update({"number": "A-1"})
    await worker_stub.ReportTaskResult(
        worker_pb.ReportTaskResultRequest(task=task, values=values), metadata=WORKER_METADATA
    )
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status == pb.Job.COMPLETED
    assert got.counters.tasks_succeeded == 1
    assert got.counters.tasks_failed == 0
    results = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    assert [dict(r.values) for r in results.results] == [{"number": "A-1"}]
    # The audit trail names the admin.
    admin_user = await _user_name(channel, admin)
    events = await job_stub.ListJobEvents(jobs_pb.ListJobEventsRequest(parent=job), metadata=USER)
    retried = [e for e in events.events if e.subject == task and e.to_status == "QUEUED"]
    assert [(e.actor, e.from_status) for e in retried] == [(admin_user, "FAILED")]
    assert "the pdfium fix is out" in retried[0].message


async def _user_name(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> str:
    """The caller's own `users/{id}`."""
    users = jobs_grpc.UserServiceStub(channel)
    me: pb.User = await users.SyncCurrentUser(jobs_pb.SyncCurrentUserRequest(), metadata=metadata)
    return me.name


@DEAD_LETTERING
async def test_discard_marks_a_dead_letter_and_records_the_admin(
    channel: grpc.aio.Channel,
    admin_stub: AdminStub,
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    admin: tuple[tuple[str, str], ...],
) -> None:
    job, task = await _dead_letter_a_task(job_stub, worker_stub, settings)
    discarded = await admin_stub.DiscardDeadLetter(
        admin_pb.DiscardDeadLetterRequest(name=task, reason="a corrupt scan"), metadata=admin
    )
    assert discarded.name == task
    assert discarded.error.startswith("discarded by an administrator: gave up after 1 attempts")
    assert (
        await admin_stub.ListDeadLetters(admin_pb.ListDeadLettersRequest(), metadata=admin)
    ).dead_letters == []
    tasks = await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)
    assert tasks.tasks[0].status == pb.Task.FAILED  # still failed: the owner reads why
    assert tasks.tasks[0].last_error == discarded.error
    events = await job_stub.ListJobEvents(jobs_pb.ListJobEventsRequest(parent=job), metadata=USER)
    [event] = [e for e in events.events if e.kind == "task.dead_letter_discarded"]
    assert event.subject == task
    assert "a corrupt scan" in event.message
    assert event.actor == await _user_name(channel, admin)
    # A discarded letter can be neither retried nor discarded again.
    for call in (
        admin_stub.RetryDeadLetter(admin_pb.RetryDeadLetterRequest(name=task), metadata=admin),
        admin_stub.DiscardDeadLetter(admin_pb.DiscardDeadLetterRequest(name=task), metadata=admin),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await admin_stub.DiscardDeadLetter(
            admin_pb.DiscardDeadLetterRequest(name="jobs/x"), metadata=admin
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- the queues ---------------------------------------------------------------------------


async def test_queue_stats_reflect_the_messages_and_the_workers(
    admin_stub: AdminStub,
    job_stub: JobStub,
    settings: Settings,
    admin: tuple[tuple[str, str], ...],
) -> None:
    created = await create_uploaded(job_stub, settings, USER, {"a.pdf": PDF, "b.pdf": PDF})
    await job_stub.FinalizeUploads(
        jobs_pb.FinalizeUploadsRequest(name=created.job.name), metadata=USER
    )
    spec = streams.ingest_queue(settings)

    async def ingest() -> admin_pb.PoolQueue:
        stats = await admin_stub.GetQueueStats(admin_pb.GetQueueStatsRequest(), metadata=admin)
        pools = {p.pool: p for p in stats.pools}
        assert set(pools) == {"ingest", "extract"}
        assert pools["extract"].messages == 0
        return pools["ingest"]

    for _ in range(600):  # the outbox relay publishes just after the commit (30 s, loaded)
        queue = await ingest()
        if queue.pending == 2:
            break
        await asyncio.sleep(0.05)
    assert (queue.pending, queue.ack_pending, queue.messages) == (2, 0, 2)
    assert queue.stream == spec.stream
    assert queue.consumer == spec.durable
    assert queue.HasField("oldest_age")
    assert queue.consumers == 1

    nc = await nats.connect(settings.nats_url)
    try:
        # A worker holds one message, and says so in its load heartbeat.
        sub = await nc.jetstream().pull_subscribe_bind(spec.durable, stream=spec.stream)
        await sub.fetch(1, timeout=10)
        beat = {"pod": "ingest-0", "inflight": 1, "waiting": 1, "waiting_on": ["the jobs service"]}
        await nc.publish(
            f"{streams.WORKER_LOAD_SUBJECT}.{spec.durable}.ingest-0", json.dumps(beat).encode()
        )
        await nc.flush()
        for _ in range(600):
            queue = await ingest()
            if queue.workers:
                break
            await asyncio.sleep(0.05)
    finally:
        await nc.close()
    assert (queue.pending, queue.ack_pending, queue.messages) == (1, 1, 2)
    assert [(w.pod, w.inflight) for w in queue.workers] == [("ingest-0", 1)]
    assert queue.workers[0].HasField("last_seen_time")
    # Its message is held waiting on a dependency, not worked on: the operator sees on what.
    assert queue.workers[0].waiting == 1
    assert list(queue.workers[0].waiting_on) == ["the jobs service"]


def test_a_worker_not_heard_from_is_forgotten() -> None:
    loads = WorkerLoads()
    now = dt.datetime.now(dt.UTC)
    loads.record("extract-workers", WorkerSeen("old", 3, now - WORKER_GONE_AFTER * 2))
    loads.record("extract-workers", WorkerSeen("live", 1, now))
    loads.record("ingest-workers", WorkerSeen("other-pool", 1, now))
    assert [w.pod for w in loads.workers("extract-workers", now=now)] == ["live"]
    assert loads.workers("nobody", now=now) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_page_of_every_tenants_big_jobs_holds_about_a_page_in_memory(
    job_stub: JobStub,
    admin_stub: AdminStub,
    admin: tuple[tuple[str, str], ...],
) -> None:
    # A job configured with 100 fields of 2,000-character instructions is ~200 KB; 150 of
    # them listed at page_size 1000 were all read at once (`.all()`) to answer 3 MiB: 63 MB
    # measured (~420 MB for 1,000). Now a few rows at a time: 9 MB.
    fields = [
        pb.JobField(name=f"f{i}", data_type="text", instruction=f"{i}-".ljust(2000, "i"))
        for i in range(100)
    ]
    for _ in range(150):
        created = await job_stub.CreateJob(
            jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=1)]),
            metadata=USER,
        )
        await job_stub.ConfigureJob(
            jobs_pb.ConfigureJobRequest(name=created.job.name, fields=fields), metadata=USER
        )

    tracemalloc.start()
    try:
        page = await admin_stub.ListAllJobs(
            admin_pb.ListAllJobsRequest(page_size=1000), metadata=admin
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert page.next_page_token
    assert page.total_size == 150
    assert 1 <= len(page.jobs) <= keyset.PAGE_BYTES // (200 * 1000)
    assert peak < 24 * MB, f"{peak / MB:.0f} MB"
