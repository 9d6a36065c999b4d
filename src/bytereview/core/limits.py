"""Size limits every component enforces the same way: user input, stored text, batch sizes.

Lengths match the columns they are stored in (models of the jobs service), so a value that
passes here always fits; text the platform writes itself (errors, media types) is cut to
the limit rather than refused.
"""

from __future__ import annotations

from bytereview.core.errors import InvalidArgument

# Names people type: jobs, templates, API keys, user display names.
MAX_DISPLAY_NAME = 200
# A template's description: a note for people, not a document (it was unbounded: a
# template of megabytes passed gRPC's message limit in every listing holding it).
MAX_DESCRIPTION = 2000
# Client-chosen idempotency keys (CreateJob, StartJob).
MAX_REQUEST_ID = 100
# A declared path inside a job (folders kept).
MAX_PATH = 1024
# A field list (job configuration, templates, preview) and each field's instruction.
MAX_FIELDS = 100
MAX_FIELD_NAME = 64
MAX_INSTRUCTION = 2000
# Characters of one extracted value, whoever writes it: a user's correction (UpdateResult)
# or an extractor's answer. An address, a description; never a document. A model that quotes
# a whole document into one field (5,000,000 characters were stored whole, and sent with every
# page of results and every export) gets null for that value, flagged for review
# (services/extract/bounds.py, docs/DESIGN.md "Bounds on what an extractor reports"); the
# jobs service refuses a worker's report past it.
MAX_VALUE_CHARS = 10_000
# Text written by the platform: error messages, event messages, media types, extractor names.
MAX_ERROR = 2000
MAX_MEDIA_TYPE = 200
MAX_EXTRACTOR = 100
# Batch sizes.
# The default of Settings.max_files_per_job (the limit itself is a setting).
MAX_FILES_PER_JOB = 10_000
# Files one CreateJob may declare: its answer carries a signed URL per file, and one
# request stays well under a second.
MAX_FILES_PER_CREATE = 10_000
MAX_ENTRIES_PER_REPORT = 1000
# Files and pages of one combined task (one folder's files sent to the model together).
# Nothing bounded it: a folder of 10,000 images was one task that could pass the worker's
# maximum run time (task_max_run_seconds, 30 minutes) and be delivered again and again.
# StartJob refuses (FAILED_PRECONDITION) a job with a combined folder past either, naming
# the folder (docs/DESIGN.md "Combined folders"). 100 files is a thick case file of
# scans; 1,000 pages is what one Gemini request reads well (and ~260,000 input tokens of
# page images, a quarter of its context window).
MAX_FILES_PER_COMBINED_TASK = 100
MAX_PAGES_PER_COMBINED_TASK = 1000
# Tasks begun or results reported in one batched worker call (BeginTasks, ReportTaskResults).
MAX_TASKS_PER_BATCH = 500
# ...and their bytes: a quarter of the 32 MiB gRPC message limit (core/rpc.py, clients.py),
# for a batch of results that each name many files (a combined folder's left-out files).
MAX_BATCH_BYTES = 8 * 1024 * 1024
MAX_KEYS_PER_USER = 50
# Reading a PDF (core/pdf_process.py): pdfium's work on a page is not bounded by the file's
# size, so each call (open, one page read or drawn) runs in a child process within these.
# CPU seconds the child may spend on one call, not wall time: a child starved of CPU (a
# busy machine, a throttled pod) reads slower, and a page failed for that would fail for
# good, where the bound is meant for pages that cost too much to read anywhere.
PDF_CALL_SECONDS = 60.0
# ...and, far above it, the wall-clock time one call may take: a backstop for a child that
# is stuck without using CPU (stopped, blocked on a disk). Ten times the CPU bound, so a
# call only ever meets it with less than a tenth of a core (extract requests a quarter).
PDF_CALL_WALL_SECONDS = 600.0
PDF_MEMORY_BYTES = 1024**3
# ...and one document's work: its calls' CPU seconds and the CPU time of its pages' OCR (not
# its waiting for the OCR engine or for a core): well inside a task's maximum run time
# (task_max_run_seconds, 30 min).
PDF_DOCUMENT_SECONDS = 600.0
# Characters of a PDF's text layer read per page, and over a document's pages. A text layer
# is not bounded by the file's size: a content stream of repeated text deflates ~1000:1, and
# each character is sent from the PDF child with its box (~250 bytes in the reader): a 5 KB
# PDF of 2,000,000 characters on one page took 577 MB of the extract worker. A dense printed
# page holds ~5,000.
MAX_PAGE_TEXT_CHARS = 100_000
MAX_DOCUMENT_TEXT_CHARS = 500_000
# Children reading PDFs at once per process (their memory adds up).
PDF_PROCESSES = 2
# OCR of one page (an image, a scanned PDF page), counted in the page's own CPU time, not
# its waiting for the engine it shares or for a core (services/extract/reading/ocr_run.py):
# recognition grows with the text, and a page of dense small print took 192 CPU-seconds.
# A receipt takes 2-5.
OCR_PAGE_SECONDS = 60.0
# Pixels of a page drawn for OCR, and of an image ByteReview will decode at all: a PNG of
# 100,000 x 100,000 pixels is a few KiB compressed and 30 GB decoded. 50 Mpx is a
# 7,000 x 7,000 photo, an A2 sheet scanned at 300 dpi.
MAX_IMAGE_PIXELS = 50_000_000
# Pixels of image files one process holds decoded at once (an extract worker's wait in
# memory for the OCR engine, which reads one page at a time; the ingest service draws as
# many pages as the web app asks at once): one image of the largest size, ~350-500 MB
# decoded and converted, or many receipts (1-3 Mpx) side by side. Images wait for room
# (core/pixel_budget.py); a pod has 1 GiB.
DECODED_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# Scans of a JPEG ByteReview will decode: libjpeg decodes every scan over the whole image,
# and a progressive scan that says "nothing more here" for every block is ~100 bytes, so
# 1 MiB of JPEG at 7000 x 7000 pixels took 43 CPU-seconds (10,000 scans) and a 2 GiB
# upload would take hours. Encoders write 1 (baseline) to ~10-20 (progressive) scans.
MAX_JPEG_SCANS = 100
# ...and what Pillow walks in Python before the first scan: each segment (an APP segment is
# kept whole: 4 MB of empty ones took 146 MB) and each stray byte between segments (read
# one at a time). Cameras write ~10 segments, a large ICC profile or XMP packet ~100.
MAX_JPEG_SEGMENTS = 1000
MAX_JPEG_STRAY_BYTES = 64 * 1024
# Bytes of a WebP ByteReview will decode: Pillow hands libwebp the whole file at once, read
# into memory whatever the image's size (a 10 x 10 image in 300 MB of padding took 587 MB),
# and uploads may be 2 GiB. A 50 Mpx page is a few MB as WebP, ~150 MB only as lossless noise.
MAX_WEBP_BYTES = 64 * 1024 * 1024
# ...and chunks of a WebP: libwebp's decoder lists every frame of an animation when it
# opens the file (~90 bytes each, beside the file's two copies), however few are decoded:
# 64 MiB of 46-byte frames is 1.5 million of them, 270 MB to open one 100 x 100 image. Its
# chunks are counted, frames or not, so that walking them is bounded too (64 MiB of empty
# chunks are 8 million steps). An animation's frames are one chunk each; 10,000 is minutes.
MAX_WEBP_CHUNKS = 10_000
# Numbers one TIFF page's directory may hold: Pillow turns each into a Python object (and
# each strip into a tile of its own), ~170 bytes apiece: a 1 x 1,000,000-pixel page of
# one-row strips (8 MB) took 340 MB and 8 s to open. A scan of 28,000 one-row strips (A0 at
# 600 dpi) holds 56,000; a 16-bit palette 196,608.
MAX_TIFF_PAGE_VALUES = 262_144
# ...and entries (tags) one page's directory may hold: Pillow loops over each in Python
# (and warns once per tag whose data is missing), for every page before the one drawn.
# A TIFF writes ~10-40; the format allows 65,535.
MAX_TIFF_PAGE_ENTRIES = 4096
# PNG chunks, and chunks other than image data and their bytes: Pillow walks chunks in
# Python (1,000,000 empty ones: 1 s) and reads each whole, keeping private ones (1,000,000
# empty ones: 115 MB). Encoders cut image data in 8 KiB chunks (2 GiB are 262,144) and write
# a few others (an animated PNG one per frame).
MAX_PNG_CHUNKS = 1_000_000
MAX_PNG_OTHER_CHUNKS = 10_000
MAX_PNG_OTHER_BYTES = 64 * 1024 * 1024
# Bytes of a GIF before its first image (colour table, extensions): Pillow keeps comments
# whole (20 MB of comment took 64 MB). Encoders write ~1 KiB.
MAX_GIF_HEAD_BYTES = 1024 * 1024


def check_length(value: str, limit: int, *, field: str) -> str:
    """`value` unchanged, or InvalidArgument naming `field` when it is longer than `limit`."""
    if len(value) > limit:
        raise InvalidArgument(f"{field} must be at most {limit} characters")
    return value
