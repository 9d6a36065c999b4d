"""The labelled values confidence is fitted and reported on: the offline extractor's values
on ../shared/data (SROIE receipts, invoices), each with its signals and whether the shared
scorer counts it right.

OCR is the slow part (seconds per receipt), so each document's pages are cached under
.bytereview/trust-pages-v2-ocr{READING_VERSION} (outside version control): the production
readings' version, which changes whenever what OCR reads does, so a stale cache is never
read. The rules and the checks run afresh.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

# The same data, fields and scorer as the accuracy bench: trust is measured on what it measures.
from bench.extract_accuracy import INVOICE_FIELDS, SCORER, SHARED, SROIE_FIELDS
from services.extract import DEFAULT_TYPES, Document, ExtractionRequest, Field, OfflineExtractor
from services.extract.base import Box
from services.extract.reading.page_store import READING_VERSION
from services.extract.reading.pages import PageText, document_pages
from services.extract.trust.confidence import Signals, signals
from services.extract.trust.evidence import occurrences, verify
from services.extract.trust.vocabulary import words

ROOT = Path(__file__).resolve().parents[1]
# v2: pages carry OCR's recognition score per character; ocrN: what OCR reads, as the
# production readings (services/extract/reading/page_store.py) are versioned.
CACHE = ROOT / ".bytereview" / f"trust-pages-v2-ocr{READING_VERSION}"

SROIE_TYPES = {"date": "date", "total": "amount"}
INVOICE_TYPES = {"date": "date", "amount": "amount"}
MEDIA = {".jpg": "image/jpeg", ".png": "image/png", ".pdf": "application/pdf"}


@dataclass(frozen=True, slots=True)
class Labelled:
    document: str
    field: str
    signals: Signals
    right: bool
    # The words printed on the document (the vocabulary is fitted from them).
    words: frozenset[str] = frozenset()


def scorer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("score_fields", SCORER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _open(path: Path):  # type: ignore[no-untyped-def]
    return path.open("rb")


def _cached_pages(path: Path) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return CACHE / f"{path.stem}-{digest}.json"


def _load(cache: Path) -> list[PageText]:
    pages = []
    for page in json.loads(cache.read_text()):
        boxes = tuple(Box(*b) if b else None for b in page["boxes"])
        scores = tuple(page.get("scores") or ())
        pages.append(PageText(page["number"], page["text"], boxes, scores))
    return pages


def _save(cache: Path, pages: list[PageText]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "number": p.number,
            "text": p.text,
            "boxes": [[b.left, b.top, b.right, b.bottom] if b else None for b in p.boxes],
            "scores": list(p.scores),
        }
        for p in pages
    ]
    cache.write_text(json.dumps(rows))


async def _one(
    path: Path, fields: list[Field]
) -> tuple[dict[str, Any], list[Signals], frozenset[str]]:
    document = Document(
        path.stem, path.name, MEDIA[path.suffix.lower()], functools.partial(_open, path)
    )
    cache = _cached_pages(path)
    if cache.exists():
        document.pages[:] = _load(cache)
    else:
        _save(cache, await document_pages(document))
    found = await OfflineExtractor().extract(
        ExtractionRequest(fields=fields, types=DEFAULT_TYPES, documents=[document])
    )
    pages = {document.name: document.pages}
    out = []
    for field in fields:
        value = found.values[field.name]
        check = verify(found.evidence.get(field.name), value, field, pages)
        repeats = occurrences(value, field, document.pages)
        out.append(signals(field, value, found.methods.get(field.name, ""), check, repeats))
    printed = frozenset(w for page in document.pages for w in words(page.text))
    return found.values, out, printed


def _right(score: ModuleType, got: Any, want: Any, ftype: str) -> bool:
    empty_got = got is None or str(got).strip() == ""
    empty_want = want is None or str(want).strip() == ""
    if empty_got or empty_want:
        return empty_got and empty_want
    return bool(score.norm_form(got, ftype) == score.norm_form(want, ftype))


async def labelled(name: str, limit: int = 10_000, *, cached_only: bool = False) -> list[Labelled]:
    """`sroie-train`, `sroie-dev` or `invoices`; with `cached_only`, only the documents whose
    pages are cached already (no OCR)."""
    score = scorer()
    data = SHARED / "data" / name
    if name.startswith("sroie"):
        files = sorted((data / "img").glob("*.jpg"))[:limit]
        fields, types = SROIE_FIELDS, SROIE_TYPES
    else:
        files = sorted(data.glob("*.pdf"))[:limit]
        fields, types = INVOICE_FIELDS, INVOICE_TYPES
    if cached_only:
        files = [f for f in files if _cached_pages(f).exists()]
    out = []
    for n, path in enumerate(files, 1):
        if name.startswith("sroie"):
            truth = json.loads((data / "key" / f"{path.stem}.json").read_text())
        else:
            raw = json.loads(path.with_suffix(".json").read_text())
            truth = raw[0] if isinstance(raw, list) else raw
        values, found, printed = await _one(path, fields)
        for field, sig in zip(fields, found, strict=True):
            ftype = types.get(field.name, "text")
            right = _right(score, values[field.name], truth.get(field.name), ftype)
            out.append(Labelled(path.stem, field.name, sig, right, printed))
        if n % 10 == 0:
            print(f"  {name}: {n}/{len(files)} documents", flush=True)
    return out


if __name__ == "__main__":  # warm the page cache
    for split in ("sroie-dev", "sroie-train", "invoices"):
        rows = asyncio.run(labelled(split))
        print(split, len(rows), "values,", sum(r.right for r in rows), "right")
