"""The storage-key layout of a job: the one place that knows where a job's bytes live.

    jobs/{job}/                              everything of one job (deleted with it)
    jobs/{job}/uploads/{file}                a file the user declared and uploaded
    jobs/{job}/entries/{archive}/{index}     entry `index` unpacked from archive file `archive`
    jobs/{job}/readings/{digest}.v{n}.json.gz  the pages OCR read from one of the files above

Entry keys are derived from the entry index, so a redelivered archive rewrites the same
objects. Ids are 32 lower-case hex digits (uuid4().hex).
"""

from __future__ import annotations

import hashlib
import re

JOBS_PREFIX = "jobs/"
_ID = r"[0-9a-f]{32}"
# What a signed upload URL may write: a job's upload key and nothing else.
UPLOAD_KEY = re.compile(rf"^jobs/{_ID}/uploads/{_ID}$")
_JOB_OF_KEY = re.compile(rf"^jobs/(?P<job>{_ID})/.+")


def job_prefix(job_id: str) -> str:
    return f"{JOBS_PREFIX}{job_id}/"


def upload_key(job_id: str, file_id: str) -> str:
    return f"{job_prefix(job_id)}uploads/{file_id}"


def entry_prefix(job_id: str, archive_id: str) -> str:
    return f"{job_prefix(job_id)}entries/{archive_id}/"


def entry_key(prefix: str, index: int) -> str:
    """The key of entry `index` under an `entry_prefix`."""
    return f"{prefix}{index}"


def reading_key(file_key: str, version: int) -> str | None:
    """Where the pages read from the file at `file_key` are kept (reading `version`), or None
    for a file outside a job: a reading lives and goes with its job."""
    job = job_of_key(file_key)
    if job is None:
        return None
    digest = hashlib.sha256(file_key.encode()).hexdigest()[:32]
    return f"{job_prefix(job)}readings/{digest}.v{version}.json.gz"


def is_upload_key(key: str) -> bool:
    return UPLOAD_KEY.match(key) is not None


def is_in_job(key: str, job_id: str) -> bool:
    """Whether `key` lies under the job's prefix (no `..` that could climb out of it)."""
    return key.startswith(job_prefix(job_id)) and ".." not in key


def job_of_key(key: str) -> str | None:
    """The job id a key belongs to, or None for a key outside the layout."""
    match = _JOB_OF_KEY.match(key)
    return match["job"] if match else None
