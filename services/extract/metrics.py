"""Prometheus metrics of the extract workers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TASKS = Counter(
    "bytereview_extract_tasks_total",
    "Extraction tasks finished by this worker, by outcome",
    # superseded: its report was of an earlier attempt, a later delivery runs the task
    ["outcome"],  # succeeded | retry | failed | dropped | superseded
)
MODEL_SECONDS = Histogram(
    "bytereview_extract_model_seconds",
    "Time of one extractor call",
    ["extractor"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 60, 120, 300),
)
TOKENS = Counter(
    "bytereview_extract_tokens_total", "Model tokens used, by direction", ["direction"]
)
RETRIES = Counter(
    "bytereview_extract_retries_total",
    "Extractor calls tried again, by reason",
    ["reason"],  # rate_limited | invalid_output | transient
)
RATE_LIMITED = Counter("bytereview_extract_rate_limited_total", "429 answers from the model API")
CONCURRENCY_LIMIT = Gauge(
    "bytereview_extract_concurrency_limit", "Current AIMD limit on concurrent model calls"
)
MODEL_PROBES = Counter(
    "bytereview_extract_model_probes_total",
    "Health probes of the model's service (after a 500, 504, 408 or timeout), by verdict",
    ["verdict"],  # answered | down | rate_limited | misconfigured | refused
)
