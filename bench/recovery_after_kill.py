"""Seconds from kill -9 of an extract worker to its in-flight tasks being back in work.

    .venv/bin/python bench/recovery_after_kill.py [--ack-wait S] [--tasks N] [--model-seconds S]

Real nats-server, the jobs service (SQLite) and extract workers as processes, the Gemini
stand-in answering in `--model-seconds`. The first worker is killed with SIGKILL while all
four of its slots are in model calls, and a second one starts at once (as `up` or Kubernetes
would restart it). Prints how long JetStream took to redeliver the four held messages and to
finish the job, and checks there is exactly one result per task. Target: <= 20 s with the
default AckWait (15 s, renewed by in-progress acks every 5 s). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2_grpc, worker_service_pb2_grpc
from services.jobs.server import jobs_service
from tests.servers import nats_server
from tests.services.extract.test_recovery_after_kill import kill_and_recover


async def run(args: argparse.Namespace, tmp: Path, nats_url: str) -> None:
    settings = Settings(
        env="dev",
        data_dir=tmp,
        database_url=f"sqlite+aiosqlite:///{tmp / 'bytereview.db'}",
        nats_url=nats_url,
        jobs_addr="127.0.0.1:0",
        storage_dir=tmp / "storage",
        public_url="http://gateway.bench",
        **({"ack_wait_seconds": args.ack_wait} if args.ack_wait else {}),
    )
    async with (
        jobs_service(settings) as jobs,
        grpc.aio.insecure_channel(f"127.0.0.1:{jobs.port}") as channel,
    ):
        got = await kill_and_recover(
            settings,
            jobs.port,
            jobs_service_pb2_grpc.JobServiceStub(channel),
            worker_service_pb2_grpc.JobWorkerServiceStub(channel),
            tasks=args.tasks,
            model_seconds=args.model_seconds,
        )
    print(
        f"AckWait {settings.ack_wait_seconds:.0f} s, {args.tasks} tasks, "
        f"{args.model_seconds:.1f} s per model call, 4 per worker"
    )
    print(f"held by the killed worker      {got.held}")
    print(f"redelivered after the kill     {got.recovered_seconds:5.1f} s")
    print(f"job finished after the kill    {got.finished_seconds:5.1f} s")
    print(
        f"job {got.job.Status.Name(got.job.status)}: {got.results} results for "
        f"{args.tasks} tasks, {got.model_calls} model calls"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ack-wait", type=float, default=0.0, help="default: the setting's")
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--model-seconds", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, nats_server() as nats:
        asyncio.run(run(args, Path(tmp), nats.url))


if __name__ == "__main__":
    main()
