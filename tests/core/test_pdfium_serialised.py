"""pdfium is never called from two threads at once (#17 item 2).

Many extractions and analyses of real PDFs run concurrently in one process, the way an
extract worker (8 tasks in flight) and an ingest worker run them. Before pdfium calls were
serialised this process died of SIGSEGV or heap corruption, or read wrong text. The load
runs in a child process so that a crash is a failed assertion, not a dead test runner.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

LOAD = textwrap.dedent(
    """
    import asyncio, io, sys
    from pathlib import Path
    from bytereview.core.storage import LocalStorage
    from services.extract.base import Document, ExtractionRequest
    from services.extract.offline.extractor import OfflineExtractor
    from services.extract.schema import DEFAULT_TYPES, Field
    from services.ingest.analysis import analyse
    from tests.pdfs import text_pdf

    ROUNDS, CONCURRENT, PAGES = int(sys.argv[1]), 8, 4
    pdfs = {i: text_pdf([f"Invoice Number: INV-{i:04d}", f"Total: {i}.50"], pages=PAGES)
            for i in range(40)}
    storage = LocalStorage(root=Path(sys.argv[2]), public_url="http://x", secret="s", ttl_seconds=60)
    for i, data in pdfs.items():
        with storage.open_write(f"pdf/{i}") as handle:
            handle.write(data)
    fields = [Field("invoice_number", "text", "the invoice number"), Field("total", "currency")]
    extractor = OfflineExtractor()
    wrong = []

    async def extract(i: int) -> None:
        doc = Document(f"d{i}", f"d{i}.pdf", "application/pdf",
                       lambda: io.BytesIO(pdfs[i]))
        got = await extractor.extract(ExtractionRequest(fields, DEFAULT_TYPES, [doc]))
        if got.values != {"invoice_number": f"INV-{i:04d}", "total": f"{i + 0.5:.2f}"}:
            wrong.append((i, got.values))

    async def analysis(i: int) -> None:
        # As the ingest worker calls it: on the default executor.
        found = await asyncio.to_thread(analyse, storage, f"pdf/{i}")
        if (found.status, found.page_count) != ("READY", PAGES):
            wrong.append((i, found))

    async def main() -> None:
        slots = asyncio.Semaphore(CONCURRENT)
        async def one(n: int) -> None:
            async with slots:
                await (extract if n % 4 else analysis)(n % len(pdfs))
        await asyncio.gather(*(one(n) for n in range(ROUNDS)))

    asyncio.run(main())
    print("wrong", len(wrong), wrong[:3])
    sys.exit(1 if wrong else 0)
    """
)


def test_concurrent_extractions_and_analyses_read_every_pdf_right(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOAD, "2400", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # A negative code is a signal: -11 SIGSEGV, -6 SIGABRT ("corrupted size vs. prev_size").
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "wrong 0 " in done.stdout
