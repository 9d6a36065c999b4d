"""A stand-in extractor for throughput benchmarks only: it reads nothing and answers at once.

It measures what the *platform* costs per task (queues, reports, the database), the way the
original pipeline's anchor (`../shared/anchors/arq/`) measures its own with a no-op model.
It is never a product choice: `Settings` refuses `BYTEREVIEW_BENCH_EXTRACTOR` outside dev
mode, so a production deployment (the Helm chart runs with `BYTEREVIEW_ENV=production`)
cannot select it, and every result it writes names it (`extractor = "noop-bench"`).

An image it leaves read as one blank page: the worker's evidence check would otherwise OCR
it (0.27 s even for a 1x1 PNG, a cost of the offline reader, not of the platform), and the
answer holds no value to check. A PDF's text layer is still read by the check (0.6 ms), as
`bench/throughput_vs_arq.py` measured it.

`BYTEREVIEW_BENCH_EXTRACTOR=noop-fail` fails every task instead, as a permanent failure: how
`bench/big_job.py` gets a job of 100,000 failed tasks through the real reporting path, to
measure RetryFailedTasks on it.
"""

from __future__ import annotations

from services.extract.base import Extraction, ExtractionError, ExtractionRequest
from services.extract.reading.pages import PageText

NOOP_EXTRACTOR_NAME = "noop-bench"


class NoopExtractor:
    """Answers every field with null, without opening a document; or, with `fail`, fails."""

    def __init__(self, *, fail: bool = False) -> None:
        self._fail = fail

    @property
    def name(self) -> str:
        return NOOP_EXTRACTOR_NAME

    async def extract(self, request: ExtractionRequest) -> Extraction:
        if self._fail:
            raise ExtractionError("noop-fail bench extractor: failing on purpose", retryable=False)
        for document in request.documents:
            if document.media_type.startswith("image/") and not document.pages:
                document.pages[:] = [PageText(number=1, text="", boxes=())]
        return Extraction(values=dict.fromkeys((f.name for f in request.fields), None))

    async def aclose(self) -> None:
        return None
