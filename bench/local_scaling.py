"""Local mode, for real: seconds from a backlog appearing to the first added worker.

    .venv/bin/python bench/local_scaling.py [--tasks 60]

Starts `bytereview up` (real NATS, jobs service, workers, gateway) with the Gemini stand-in
answering in 1 s, queues a burst of extraction tasks over REST and prints: when the policy
decided to scale up, when the first added worker process announced itself on NATS (its
first heartbeat: it is pulling work), how long the burst took to drain, and when the extras
retired. Asserts nothing (target: first added worker in under 5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import nats

from bytereview.core import DEV_TOKEN
from bytereview.core.streams import WORKER_LOAD_SUBJECT
from tests.e2e.conftest import launched
from tests.gemini_standin import API_KEY, GeminiStandIn, Reply, RunningStandIn
from tests.pdfs import text_pdf

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


def answer(seen: object) -> Reply:
    time.sleep(1.0)
    return Reply(values={"total": 1.0})


def wait_status(client: httpx.Client, job: str, states: set[str]) -> str:
    while (status := client.get(f"/v1/{job}").json()["status"]) not in states:
        time.sleep(0.1)
    return str(status)


async def first_heartbeat(nats_url: str, pod: str, found: dict[str, float]) -> None:
    nc = await nats.connect(nats_url)
    got = asyncio.Event()

    async def on_beat(msg: object) -> None:
        found.setdefault(pod, time.monotonic())
        got.set()

    await nc.subscribe(f"{WORKER_LOAD_SUBJECT}.extract-workers.{pod}", cb=on_beat)
    await got.wait()
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=60)
    args = parser.parse_args()
    env = {
        "BYTEREVIEW_GEMINI_API_KEY": API_KEY,
        "BYTEREVIEW_EXTRACT_CONCURRENCY": "2",
        "BYTEREVIEW_LOCAL_MAX_WORKERS": "4",
        "BYTEREVIEW_LOCAL_SCALE_DOWN_SECONDS": "10",
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        RunningStandIn(GeminiStandIn(default=answer)) as gemini,
    ):
        env["BYTEREVIEW_GEMINI_BASE_URL"] = gemini.base_url
        with (
            launched(Path(tmp) / "data", env) as platform,
            httpx.Client(base_url=platform.url, headers=AUTH, timeout=60) as client,
        ):
            nats_url = platform.wait_for_line(r"NATS at (nats://\S+)").group(1)
            pdf = text_pdf(["Total: 1.00"])
            files = [{"path": f"b/{i}.pdf", "sizeBytes": len(pdf)} for i in range(args.tasks)]
            created = client.post("/v1/jobs", json={"files": files}).json()
            job = created["job"]["name"]
            for target in created["uploadTargets"]:
                httpx.put(target["url"], content=pdf, timeout=30).raise_for_status()
            client.post(f"/v1/{job}:finalizeUploads", json={})
            wait_status(client, job, {"READY"})
            client.post(
                f"/v1/{job}:configure", json={"fields": [{"name": "total", "dataType": "currency"}]}
            )
            found: dict[str, float] = {}
            loop = asyncio.new_event_loop()
            watcher = loop.run_in_executor(
                None, lambda: asyncio.run(first_heartbeat(nats_url, "extract-2", found))
            )
            time.sleep(1)  # the subscription is in place
            mark = len(platform.lines)
            started = time.monotonic()
            client.post(f"/v1/{job}:start", json={}).raise_for_status()
            decided_line = platform.wait_for_line(r"extract: 1 -> (\d) workers", after=mark)
            decided = time.monotonic() - started
            status = wait_status(client, job, {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"})
            drained = time.monotonic() - started
            platform.wait_for_line(r"extract: \d -> 1 workers", after=mark, timeout=120)
            retired = time.monotonic() - started
            loop.run_until_complete(asyncio.wait_for(asyncio.wrap_future(watcher), 5))
            print(f"tasks {args.tasks} ({status}), 1 s per model call, 2 concurrent per worker")
            print(f"scale-up decided after      {decided:5.1f} s  (1 -> {decided_line.group(1)})")
            print(f"first added worker pulling  {found['extract-2'] - started:5.1f} s")
            print(f"burst drained after         {drained:5.1f} s")
            print(f"extras retired after        {retired:5.1f} s")
            lines = [ln for ln in platform.lines[mark:] if re.search(r"extract: \d -> \d", ln)]
            print("".join(lines), end="")


if __name__ == "__main__":
    main()
