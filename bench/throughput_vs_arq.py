"""ByteReview against the pipeline it replaces: tasks/s and pipeline CPU per task, same run.

    .venv/bin/python bench/throughput_vs_arq.py [--tasks 10000] [--workers 2] [--concurrency 50]
        [--durable] [--rounds 1] [--only arq|bytereview] [--profile DIR]

One invocation measures both pipelines on the same machine, one after the other (alternating
when `--rounds` > 1), on the same 10,000-task job with a no-op model, with PostgreSQL started
the same way for both (fsync off by default, on with `--durable`; printed either way):

- **arq**: `../shared/anchors/arq/run.sh` (the original product's pipeline: PostgreSQL + ARQ
  on Redis; its own PostgreSQL, redis-server and `--workers` ARQ workers x `--concurrency`
  jobs). Timed from enqueueing the (already created) tasks to the job row turning completed.
- **bytereview**: PostgreSQL, nats-server (JetStream), the jobs service and `--workers`
  extract workers x `--concurrency` slots with the no-op bench extractor
  (`BYTEREVIEW_BENCH_EXTRACTOR=noop`), every guarantee on: transactional outbox, idempotent
  reports, job events and their wake-ups. The job (10,000 files declared through CreateJob,
  marked analysed in SQL instead of uploading 10,000 files: untimed set-up, like the
  anchor's) is configured through the API; timed from StartJob, which also *builds* the
  tasks (the anchor's are built before its clock starts), to the job row turning COMPLETED.

Both are polled the same way (the job row, every 50 ms, over one PostgreSQL connection).
Pipeline CPU = CPU seconds of every pipeline process from /proc (PostgreSQL and all its
backends, redis-server or nats-server, the workers, the jobs service). The machine's load
average and the CPU other processes used during each run are printed too: this machine is
shared, and only figures from the same run compare. Asserts nothing; checks that every task
has exactly one result and the outbox is drained.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # type: ignore[import-untyped]  # noqa: E402  # no stubs
import grpc  # noqa: E402

from bench.goals import verdict  # noqa: E402
from bytereview.core.settings import DEV_TOKEN  # noqa: E402
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb  # noqa: E402
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc  # noqa: E402
from bytereview.jobs.v1 import resources_pb2 as pb  # noqa: E402
from tests.servers import nats_server, postgres_bin  # noqa: E402

if TYPE_CHECKING:
    from bytereview.jobs.v1.jobs_service_pb2_grpc import JobServiceAsyncStub as JobStub

ANCHOR = ROOT.parent / "shared" / "anchors" / "arq"
CLK_TCK = os.sysconf("SC_CLK_TCK")
AUTH = (("authorization", f"Bearer {DEV_TOKEN}"),)
FIELDS = 5
FINISHED = {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELLED"}


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- CPU from /proc, as the anchor measures it -------------------------------------------
def _stat(pid: int) -> tuple[int, int, int, int, int] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[1]), int(rest[11]), int(rest[12]), int(rest[13]), int(rest[14])


def cpu_self_and_reaped(pid: int) -> float:
    st = _stat(pid)
    return 0.0 if st is None else (st[1] + st[2] + st[3] + st[4]) / CLK_TCK


def cpu_tree(root: int) -> float:
    """CPU seconds of `root`, its reaped children and every live descendant."""
    total = cpu_self_and_reaped(root)
    children: dict[int, list[tuple[int, tuple[int, int, int, int, int]]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            children.setdefault(st[0], []).append((int(entry), st))
    stack = [root]
    while stack:
        for pid, st in children.get(stack.pop(), []):
            total += (st[1] + st[2]) / CLK_TCK
            stack.append(pid)
    return total


def machine_busy() -> float:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- PostgreSQL, started exactly as the anchor starts its own ----------------------------
@dataclass
class Postgres:
    port: int
    pid: int

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/bytereview"


@contextlib.contextmanager
def postgres(durable: bool) -> Iterator[Postgres]:
    """initdb --no-sync, trust, `fsync=on|off`, max_connections=300: the anchor's settings."""
    bin_dir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="br-bench-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    runner: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, user.pw_uid, user.pw_gid)
        runner = ["runuser", "-u", "postgres", "--"]
    init = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
    subprocess.run(
        [*runner, *init, "-E", "UTF8", "--no-locale", "--no-sync"], check=True, capture_output=True
    )
    port = free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sock} "
        f"-c fsync={'on' if durable else 'off'} -c max_connections=300"
    )
    ctl = [*runner, str(bin_dir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*ctl, "-l", str(root / "log"), "-w", "-t", "60", "-o", options, "start"],
        check=True,
        capture_output=True,
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    subprocess.run(
        [
            str(bin_dir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-q",
            "-c",
            "CREATE DATABASE bytereview",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield Postgres(port, pid)
    finally:
        subprocess.run([*ctl, "-m", "fast", "-w", "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


# --- the ByteReview pipeline ------------------------------------------------------------
@dataclass
class Pipeline:
    pg: Postgres
    nats_pid: int
    jobs_addr: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def cpu(self) -> dict[str, float]:
        out = {"postgres": cpu_tree(self.pg.pid), "nats": cpu_self_and_reaped(self.nats_pid)}
        out["jobs"] = cpu_self_and_reaped(self.procs["jobs"].pid)
        out["workers"] = sum(
            cpu_self_and_reaped(p.pid) for name, p in self.procs.items() if name != "jobs"
        )
        return out


def _component(
    name: str,
    argv: list[str],
    env: dict[str, str],
    logs: Path,
    profile: Path | None,
    source: Path | None,
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "launcher.cli", *argv]
    if profile is not None:
        # Written when the process stops on SIGTERM (every component exits normally then).
        command[1:3] = [
            "-m",
            "cProfile",
            "-o",
            str(profile / f"{name}.pstats"),
            "-m",
            "launcher.cli",
        ]
    # The child writes to its own copy of the descriptor: ours is closed at once.
    with open(logs / f"{name}.log", "wb") as log:
        # `python -m` puts the working directory first on the path: run the checkout used.
        return subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=source or ROOT
        )


@contextlib.contextmanager
def bytereview_pipeline(
    pg: Postgres, *, workers: int, concurrency: int, profile: Path | None, source: Path | None
) -> Iterator[Pipeline]:
    """The pipeline's processes, from this checkout or, with `source`, from another one (an
    older commit, for before/after figures: its three source roots go first on the path)."""
    with nats_server() as nats, tempfile.TemporaryDirectory(prefix="br-bench-") as tmp:
        logs = Path(tmp)
        jobs_port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
        base |= {
            "BYTEREVIEW_DATA_DIR": str(logs / "data"),
            "BYTEREVIEW_DATABASE_URL": pg.dsn.replace("postgresql://", "postgresql+asyncpg://"),
            "BYTEREVIEW_NATS_URL": nats.url,
            "BYTEREVIEW_JOBS_ADDR": f"127.0.0.1:{jobs_port}",
            "BYTEREVIEW_LOG_LEVEL": "WARNING",
        }
        if source is not None:
            roots = [source / "src", source, source / "operator"]
            base["PYTHONPATH"] = os.pathsep.join(str(r) for r in roots)
        pipeline = Pipeline(pg, nats.process.pid, f"127.0.0.1:{jobs_port}")
        pipeline.procs["jobs"] = _component("jobs", ["jobs"], base, logs, profile, source)
        for i in range(workers):
            env = base | {
                "BYTEREVIEW_BENCH_EXTRACTOR": "noop",
                "BYTEREVIEW_EXTRACT_CONCURRENCY": str(concurrency),
                "BYTEREVIEW_EXTRACT_ADDR": f"127.0.0.1:{free_port()}",
                "BYTEREVIEW_POD_NAME": f"extract-{i + 1}",
                "BYTEREVIEW_WORKER_ONLY": "true" if i else "false",
            }
            name = f"extract-{i + 1}"
            pipeline.procs[name] = _component(name, ["extract"], env, logs, profile, source)
        try:
            yield pipeline
        finally:
            for proc in pipeline.procs.values():
                proc.send_signal(signal.SIGTERM)
            for name, proc in pipeline.procs.items():
                try:
                    proc.wait(40)
                except subprocess.TimeoutExpired:
                    say(f"{name} did not stop; killing it")
                    proc.kill()
                    proc.wait()
            for log in sorted(logs.glob("*.log")):
                text = log.read_text(errors="replace")
                if "Traceback" in text:
                    say(f"{log.name} logged a traceback:\n{text[-3000:]}")


async def _jobs_ready(stub: JobStub, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await stub.ListJobs(jobs_pb.ListJobsRequest(page_size=1), metadata=AUTH, timeout=5)
            return
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def _ready_job(stub: JobStub, pg: Postgres, tasks: int) -> str:
    """A job of `tasks` analysed one-page PDFs with 5 text fields: CreateJob and ConfigureJob
    through the API; the upload and analysis of the files stood in for by SQL."""
    files = [
        jobs_pb.DeclaredFile(path=f"batch/doc_{i:06d}.pdf", size_bytes=123456) for i in range(tasks)
    ]
    created = await stub.CreateJob(
        jobs_pb.CreateJobRequest(display_name="throughput bench", files=files),
        metadata=AUTH,
        timeout=300,
    )
    job_id: str = created.job.name.split("/")[1]
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(
            "UPDATE source_files SET status = 'READY', media_type = 'application/pdf', "
            "size_bytes = declared_size, page_count = 1 WHERE job_id = $1",
            job_id,
        )
        await conn.execute(
            "UPDATE extraction_jobs SET status = 'READY', files_ready = $2 WHERE id = $1",
            job_id,
            tasks,
        )
    finally:
        await conn.close()
    fields = [
        pb.JobField(name=f"field_{i}", data_type="text", instruction=f"Extract field {i}")
        for i in range(FIELDS)
    ]
    await stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(name=created.job.name, fields=fields),
        metadata=AUTH,
        timeout=60,
    )
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return job_id


async def _measure_bytereview(
    pipeline: Pipeline, tasks: int, timeout: float, durable: bool
) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(pipeline.jobs_addr) as channel:
        stub = jobs_grpc.JobServiceStub(channel)
        await _jobs_ready(stub)
        job_id = await _ready_job(stub, pipeline.pg, tasks)
        say(f"bytereview: job of {tasks} analysed files configured; starting it")
        await asyncio.sleep(1.0)  # every worker in its fetch loop
        monitor = await asyncpg.connect(pipeline.pg.dsn)
        load0 = os.getloadavg()
        cpu0, busy0, t0 = pipeline.cpu(), machine_busy(), time.monotonic()
        await stub.StartJob(
            jobs_pb.StartJobRequest(name=f"jobs/{job_id}"), metadata=AUTH, timeout=300
        )
        t_started = time.monotonic()
        status, last_print = "", t0
        while True:
            row = await monitor.fetchrow(
                "SELECT status, tasks_succeeded, tasks_failed FROM extraction_jobs WHERE id = $1",
                job_id,
            )
            assert row is not None
            status = row["status"]
            now = time.monotonic()
            if dead := [n for n, p in pipeline.procs.items() if p.poll() is not None]:
                raise RuntimeError(f"{', '.join(dead)} exited mid-run (see its log)")
            if status in FINISHED or now - t0 > timeout:
                break
            if now - last_print >= 5:
                done = row["tasks_succeeded"] + row["tasks_failed"]
                say(f"bytereview: {done}/{tasks} ({done / (now - t0):.0f} tasks/s)")
                last_print = now
            await asyncio.sleep(0.05)
        t1 = time.monotonic()
        cpu1, busy1, load1 = pipeline.cpu(), machine_busy(), os.getloadavg()
        checks = await _checks(monitor, job_id)
        await monitor.close()
    wall = t1 - t0
    cpu = {k: round(cpu1[k] - cpu0[k], 2) for k in cpu0}
    total = sum(cpu.values())
    done = checks["tasks_succeeded"] + checks["tasks_failed"]
    return {
        "pipeline": "bytereview",
        "tasks": tasks,
        "pg_fsync": "on" if durable else "off",
        "job_status": status,
        **checks,
        "start_job_s": round(t_started - t0, 3),
        "wall_s": round(wall, 3),
        "tasks_per_s": round(done / wall, 1),
        "cpu_s": cpu,
        "cpu_pipeline_s": round(total, 2),
        "cpu_pipeline_ms_per_task": round(1000 * total / done, 3) if done else None,
        "cpu_other_processes_s": round((busy1 - busy0) - total, 1),
        "loadavg_before_after": [round(load0[0], 1), round(load1[0], 1)],
    }


async def _checks(conn: asyncpg.Connection, job_id: str) -> dict[str, Any]:
    """Exactly one result per task, the outbox drained (every message published)."""
    for _ in range(100):
        unsent = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        if not unsent:
            break
        await asyncio.sleep(0.1)
    row = await conn.fetchrow(
        "SELECT tasks_succeeded, tasks_failed, event_sequence FROM extraction_jobs WHERE id = $1",
        job_id,
    )
    assert row is not None
    results = await conn.fetchval(
        "SELECT count(*) FROM extraction_results WHERE job_id = $1", job_id
    )
    distinct = await conn.fetchval(
        "SELECT count(DISTINCT task_id) FROM extraction_results WHERE job_id = $1", job_id
    )
    attempts = await conn.fetchval(
        "SELECT max(attempts) FROM extraction_tasks WHERE job_id = $1", job_id
    )
    return {
        "tasks_succeeded": row["tasks_succeeded"],
        "tasks_failed": row["tasks_failed"],
        "results_rows": results,
        "duplicate_results": results - distinct,
        "max_attempts": attempts,
        "job_events": row["event_sequence"],
        "outbox_unsent": unsent,
    }


def run_bytereview(args: argparse.Namespace, source: Path | None = None) -> dict[str, Any]:
    with (
        postgres(args.durable) as pg,
        bytereview_pipeline(
            pg,
            workers=args.workers,
            concurrency=args.concurrency,
            profile=args.profile,
            source=source,
        ) as pipeline,
    ):
        got = asyncio.run(_measure_bytereview(pipeline, args.tasks, args.timeout, args.durable))
    if source is not None:
        got["pipeline"] = f"bytereview before ({source})"
    return got


# --- the anchor -------------------------------------------------------------------------
def run_arq(args: argparse.Namespace) -> dict[str, Any]:
    argv = [str(args.anchor / "run.sh"), "--files", str(args.tasks), "--fields", str(FIELDS)]
    argv += ["--workers", str(args.workers), "--max-jobs", str(args.concurrency)]
    argv += ["--timeout", str(args.timeout)]
    if args.durable:
        argv.append("--durable")
    env = dict(os.environ, ARQ_ANCHOR_VENV=str(args.arq_venv))
    load0, busy0 = os.getloadavg(), machine_busy()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    load1, busy1 = os.getloadavg(), machine_busy()
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"the anchor printed no result:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    # The anchor's machine CPU covers its own window (enqueue -> completed).
    other = result["cpu_machine_busy_s"] - result["cpu_pipeline_s"] - result["cpu_enqueuer_s"]
    return {
        "pipeline": "arq",
        "tasks": args.tasks,
        "pg_fsync": result["pg_fsync"],
        "job_status": result["job_status"],
        "tasks_succeeded": result["tasks_completed"],
        "tasks_failed": result["tasks_failed"],
        "results_rows": result["results_rows"],
        "wall_s": result["wall_s"],
        "tasks_per_s": result["tasks_per_s"],
        "cpu_s": {
            "postgres": result["cpu_postgres_s"],
            "redis": result["cpu_redis_s"],
            "workers": result["cpu_workers_s"],
        },
        "cpu_pipeline_s": result["cpu_pipeline_s"],
        "cpu_pipeline_ms_per_task": result["cpu_pipeline_ms_per_task"],
        "cpu_other_processes_s": round(other, 1),
        "loadavg_before_after": [round(load0[0], 1), round(load1[0], 1)],
        "whole_run_machine_busy_s": round(busy1 - busy0, 1),
    }


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| pipeline | PG fsync | tasks | wall s | tasks/s | pipeline CPU ms/task | "
        "CPU s by process | other processes' CPU s | load avg (1 min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        parts = ", ".join(f"{k} {v}" for k, v in r["cpu_s"].items())
        load = " -> ".join(str(x) for x in r["loadavg_before_after"])
        out.append(
            f"| {r['pipeline']} | {r['pg_fsync']} | {r['tasks_succeeded']} | {r['wall_s']} | "
            f"{r['tasks_per_s']} | {r['cpu_pipeline_ms_per_task']} | {parts} | "
            f"{r['cpu_other_processes_s']} | {load} |"
        )
    return "\n".join(out)


# The bar (#18): at least twice the original's tasks/s at no more than half its CPU
# per task, every task done once.
GOAL_SPEED = 2.0
GOAL_CPU = 0.5


def goal_misses(rows: list[dict[str, Any]]) -> list[str]:
    """What each ByteReview run of this checkout missed of the goal, against the original's
    run just before it (same round, same machine): empty when every run met it."""
    misses: list[str] = []
    anchor: dict[str, Any] | None = None
    for row in rows:
        if row["pipeline"] == "arq":
            anchor = row
            continue
        if row["pipeline"] != "bytereview":
            continue  # --before: another checkout, for comparison only
        done = row["tasks_succeeded"] == row["tasks"] and not row.get("duplicate_results")
        if row["job_status"] != "COMPLETED" or not done:
            misses.append(f"job {row['job_status']}: {row['tasks_succeeded']}/{row['tasks']} once")
        if anchor is None:
            misses.append("no run of the original to compare with (--only bytereview)")
            continue
        speed = row["tasks_per_s"] / anchor["tasks_per_s"]
        cpu = row["cpu_pipeline_ms_per_task"] / anchor["cpu_pipeline_ms_per_task"]
        if speed < GOAL_SPEED:
            misses.append(f"tasks/s {speed:.2f}x the original's (goal >= {GOAL_SPEED:g}x)")
        if cpu > GOAL_CPU:
            misses.append(f"CPU per task {cpu:.2f}x the original's (goal <= {GOAL_CPU:g}x)")
    return misses


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes, each side")
    parser.add_argument("--concurrency", type=int, default=50, help="tasks per worker at once")
    parser.add_argument("--durable", action="store_true", help="PostgreSQL fsync=on (both)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the pair this often")
    parser.add_argument("--only", choices=["arq", "bytereview"], default=None)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--goal",
        action="store_true",
        help="exit 1 unless every ByteReview run did every task once at >= 2x the original's "
        "tasks/s and <= half its CPU per task (for a nightly run; the suite never times)",
    )
    parser.add_argument("--anchor", type=Path, default=ANCHOR)
    parser.add_argument(
        "--arq-venv", type=Path, default=Path(tempfile.gettempdir()) / "bytereview-arq-anchor-venv"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="cProfile the jobs service and workers to DIR"
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="also run ByteReview from this checkout (e.g. `git worktree add DIR <commit>`)",
    )
    return parser.parse_args(argv)


def main() -> None:
    args = parse()

    def on_signal(signum: int, frame: object) -> None:
        # Also SIGINT: a background job of a non-interactive shell ignores it by default.
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()
    say(f"PostgreSQL fsync={'on' if args.durable else 'off'} on both sides; cores {os.cpu_count()}")
    rows: list[dict[str, Any]] = []
    sides: list[tuple[str, Callable[[argparse.Namespace], dict[str, Any]]]] = [("arq", run_arq)]
    if args.before is not None:
        before = args.before.resolve()
        sides.append(("bytereview", lambda a: run_bytereview(a, before)))
    sides.append(("bytereview", run_bytereview))
    for _ in range(args.rounds):
        for side, run in sides:
            if args.only in (None, side):
                say(f"{side}: {args.tasks} tasks, {args.workers} x {args.concurrency}")
                rows.append(run(args))
                print(json.dumps(rows[-1]), flush=True)
    print(table(rows), flush=True)
    if args.goal:
        verdict(goal_misses(rows), "every run >= 2x the tasks/s at <= half the CPU per task")


if __name__ == "__main__":
    main()
