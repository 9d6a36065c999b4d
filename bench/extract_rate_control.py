"""Rate control against a Gemini stand-in that enforces a requests-per-minute quota with 429s.

    .venv/bin/python bench/extract_rate_control.py           # 60 requests/min, 150 calls a run
    .venv/bin/python bench/extract_rate_control.py --quick   # 600 requests/min, 900 calls a run

Each run sends its calls through the production path (RateController + GeminiExtractor, the
real google-genai SDK) with 8 concurrent tasks, once with the quota configured
(`extract_rpm`) and once without (AIMD alone, learning the quota from 429s). Prints the
achieved throughput as a share of the quota, the 429s seen and failed tasks; asserts nothing
(target: >= 90% of the quota, zero failed tasks).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.extract import (
    DEFAULT_TYPES,
    Document,
    ExtractionError,
    ExtractionRequest,
    Field,
    RateController,
)
from services.extract.model.gemini import GeminiExtractor
from tests.gemini_standin import API_KEY, GeminiStandIn, Reply, RunningStandIn
from tests.pdfs import text_pdf

FIELDS = [Field("total", "currency")]
CONCURRENCY = 8


async def run(quota: int, calls: int, configured_rpm: int) -> None:
    state = GeminiStandIn(quota_rpm=quota)
    state.default = lambda seen: Reply(values={"total": 1.0})
    pdf = text_pdf(["Total: 1.00"])
    document = Document("f", "f.pdf", "application/pdf", functools.partial(io.BytesIO, pdf))
    request = ExtractionRequest(fields=FIELDS, types=DEFAULT_TYPES, documents=[document])
    with RunningStandIn(state) as server:
        extractor = GeminiExtractor(api_key=API_KEY, model="bench", base_url=server.base_url)
        rate = RateController(max_concurrency=CONCURRENCY, rpm=configured_rpm)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(calls):
            queue.put_nowait(i)
        failed = 0

        async def task_worker() -> None:
            nonlocal failed
            while not queue.empty():
                queue.get_nowait()
                try:
                    await rate.call(lambda: extractor.extract(request))
                except ExtractionError:
                    failed += 1

        started = time.monotonic()
        async with extractor:
            await asyncio.gather(*(task_worker() for _ in range(CONCURRENCY)))
        elapsed = time.monotonic() - started
    achieved = calls / elapsed * 60.0
    mode = f"rpm={configured_rpm}" if configured_rpm else "AIMD only"
    print(
        f"{mode:>10}: {calls} calls in {elapsed:6.1f} s = {achieved:6.1f} req/min = "
        f"{achieved / quota:6.1%} of the quota; 429s {state.rejected}, "
        f"failed tasks {failed}, final AIMD limit {rate.limit:.1f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quota = 600 if args.quick else 60
    # Several windows, so the quota and not the first burst decides the figure.
    calls = quota * 3 // 2 if args.quick else quota * 5 // 2
    print(f"quota {quota} requests/min (sliding 60 s window), {CONCURRENCY} concurrent tasks")
    await run(quota, calls, configured_rpm=quota)
    await run(quota, calls, configured_rpm=0)


if __name__ == "__main__":
    asyncio.run(main())
