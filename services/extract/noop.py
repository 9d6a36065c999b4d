"""A stand-in extractor for throughput benchmarks only: it reads nothing and answers at once.

It measures what the *platform* costs per task (queues, reports, the database), the way the
original pipeline's anchor (`../shared/anchors/arq/`) measures its own with a no-op model.
It is never a product choice: `Settings` refuses `BYTEREVIEW_BENCH_EXTRACTOR` outside dev
mode, so a production deployment (the Helm chart runs with `BYTEREVIEW_ENV=production`)
cannot select it, and every result it writes names it (`extractor = "noop-bench"`).
"""

from __future__ import annotations

from services.extract.base import Extraction, ExtractionRequest

NOOP_EXTRACTOR_NAME = "noop-bench"


class NoopExtractor:
    """Answers every field with null, without opening a document."""

    @property
    def name(self) -> str:
        return NOOP_EXTRACTOR_NAME

    async def extract(self, request: ExtractionRequest) -> Extraction:
        return Extraction(values=dict.fromkeys((f.name for f in request.fields), None))

    async def aclose(self) -> None:
        return None
