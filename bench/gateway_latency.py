"""REST gateway overhead: the same calls through REST and straight over gRPC, same run.

    .venv/bin/python bench/gateway_latency.py            # 200 requests/s for 30 s per path
    .venv/bin/python bench/gateway_latency.py --quick    # 10 s per path
    .venv/bin/python bench/gateway_latency.py --postgres # jobs on PostgreSQL, not SQLite

Starts `bytereview up`, creates a job, then sends GetJob and ListJobs at a fixed rate (open
loop: requests leave on schedule whether or not earlier ones have answered) through the
gateway and, interleaved, to the jobs service's gRPC port. Prints p50/p99 latency per path
and the REST overhead; asserts nothing (target: +2 ms at p50, REST p99 under 25 ms).

The REST load generator is aiohttp: httpx's async pool costs about 1 ms of CPU a request
and, on this 2-core machine, put 50-90 ms stalls into REST p99 that were the client's own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import grpc

from bytereview.core import DEV_TOKEN
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from tests.e2e.conftest import launched
from tests.servers import postgres_server

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}
METADATA = (("authorization", f"Bearer {DEV_TOKEN}"),)


async def load(rate: float, seconds: float, call: Callable[[], Awaitable[object]]) -> list[float]:
    """Open-loop load: one call every 1/rate s; latencies in ms (failures raise)."""
    latencies: list[float] = []

    async def one() -> None:
        started = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - started) * 1000)

    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


async def run(url: str, jobs_addr: str, rate: float, seconds: float) -> None:
    async with (
        aiohttp.ClientSession(
            base_url=url,
            headers=AUTH,
            raise_for_status=True,
            timeout=aiohttp.ClientTimeout(total=10),
        ) as rest,
        grpc.aio.insecure_channel(jobs_addr) as channel,
    ):
        stub = jobs_grpc.JobServiceStub(channel)
        # A full page for the list call: 25 jobs, each with fields configured.
        files = [{"path": "a.pdf", "sizeBytes": 1}]
        fields = [
            {"name": "total", "dataType": "currency", "instruction": "the amount due"},
            {"name": "date", "dataType": "date_ymd", "instruction": ""},
        ]
        for _ in range(25):
            async with rest.post("/v1/jobs", json={"files": files}) as created:
                job = (await created.json())["job"]["name"]
            async with rest.post(f"/v1/{job}:configure", json={"fields": fields}):
                pass

        async def rest_get() -> None:
            async with rest.get(f"/v1/{job}") as reply:
                await reply.read()

        async def rest_list() -> None:
            async with rest.get("/v1/jobs", params={"pageSize": 20}) as reply:
                await reply.read()

        async def grpc_get() -> None:
            await stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=METADATA, timeout=10)

        async def grpc_list() -> None:
            await stub.ListJobs(
                jobs_pb.ListJobsRequest(page_size=20), metadata=METADATA, timeout=10
            )

        for call in (rest_get, grpc_get, rest_list, grpc_list):  # warm connections and caches
            for _ in range(50):
                await call()
        print(f"{rate:.0f} requests/s for {seconds:.0f} s per path")
        print(
            f"{'call':<10} {'REST p50':>9} {'gRPC p50':>9} {'REST p99':>9} {'gRPC p99':>9} {'added p50':>10}"
        )
        for name, via_rest, via_grpc in (
            ("GetJob", rest_get, grpc_get),
            ("ListJobs", rest_list, grpc_list),
        ):
            r = await load(rate, seconds, via_rest)
            g = await load(rate, seconds, via_grpc)
            print(
                f"{name:<10} {pct(r, 50):>8.2f}ms {pct(g, 50):>8.2f}ms {pct(r, 99):>8.2f}ms "
                f"{pct(g, 99):>8.2f}ms {pct(r, 50) - pct(g, 50):>+9.2f}ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--postgres", action="store_true", help="a real PostgreSQL 15")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        env = {}
        if args.postgres:
            server = stack.enter_context(postgres_server())
            env["BYTEREVIEW_DATABASE_URL"] = server.create_database("bench")
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        platform = stack.enter_context(launched(Path(tmp) / "data", env))
        jobs_addr = platform.wait_for_line(r"gRPC: jobs (\S+),").group(1)
        print("jobs database:", "PostgreSQL" if args.postgres else "SQLite")
        asyncio.run(run(platform.url, jobs_addr, args.rate, 10.0 if args.quick else 30.0))


if __name__ == "__main__":
    main()
