"""Accuracy of the offline extractor on the shared receipts and invoices.

    .venv/bin/python bench/extract_accuracy.py                 # both data sets
    .venv/bin/python bench/extract_accuracy.py --set sroie --limit 10

Runs the production OfflineExtractor (OCR for images, PDF text layer for PDFs) on
../shared/data/sroie-dev (company, date, address, total) and ../shared/data/invoices
(invoice_number, date, issuer, amount, currency), writes the predictions to a temporary
directory and scores them with ../shared/tools/score_fields.py. Prints the scorer's
report and the time per document; asserts nothing (target: SROIE normalised F1 >= 0.70).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.extract import DEFAULT_TYPES, Document, ExtractionRequest, Field, OfflineExtractor

SHARED = Path(__file__).resolve().parents[2] / "shared"
SCORER = SHARED / "tools" / "score_fields.py"

SROIE_FIELDS = [
    Field("company", "text", "the company (seller) that issued the receipt"),
    Field("date", "date_dmy", "the receipt date"),
    Field("address", "address", "the seller's address"),
    Field("total", "currency", "the total amount paid"),
]
INVOICE_FIELDS = [
    Field("invoice_number", "text", "the invoice number"),
    Field("date", "date_ymd", "the invoice date"),
    Field("issuer", "text", "the company that issued the invoice"),
    Field("amount", "currency", "the total amount due, taxes included"),
    Field("currency", "text", "ISO 4217 currency code of the amounts"),
]
MEDIA = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".pdf": "application/pdf",
}


def _open(path: Path):  # type: ignore[no-untyped-def]
    return path.open("rb")


async def predict(files: list[Path], fields: list[Field], out: Path) -> list[float]:
    extractor = OfflineExtractor()
    seconds = []
    for path in files:
        document = Document(
            name=path.stem,
            path=path.name,
            media_type=MEDIA[path.suffix.lower()],
            open=functools.partial(_open, path),
        )
        started = time.perf_counter()
        result = await extractor.extract(
            ExtractionRequest(fields=fields, types=DEFAULT_TYPES, documents=[document])
        )
        seconds.append(time.perf_counter() - started)
        values = {k: v for k, v in result.values.items() if v is not None}
        (out / f"{path.stem}.json").write_text(json.dumps(values, default=str))
    return seconds


def score(gt: Path, pred: Path, fields: list[Field], types: str) -> None:
    names = ",".join(f.name for f in fields)
    cmd = [sys.executable, str(SCORER), "--gt", str(gt), "--pred", str(pred)]
    subprocess.run([*cmd, "--fields", names, "--types", types, "--show-errors", "8"], check=True)


def report(title: str, seconds: list[float]) -> None:
    per_doc = sum(seconds) / max(len(seconds), 1)
    print(f"\n== {title}: {len(seconds)} documents, {per_doc:.2f} s per document")


async def sroie(limit: int, work: Path) -> None:
    root = SHARED / "data" / "sroie-dev"
    images = sorted((root / "img").glob("*.jpg"))[:limit]
    pred = work / "sroie"
    pred.mkdir()
    seconds = await predict(images, SROIE_FIELDS, pred)
    gt = work / "sroie-gt"
    gt.mkdir()
    for image in images:
        key = root / "key" / f"{image.stem}.json"
        (gt / key.name).write_bytes(key.read_bytes())
    report("SROIE receipts (OCR)", seconds)
    score(gt, pred, SROIE_FIELDS, "date=date,total=amount")


async def invoices(limit: int, work: Path) -> None:
    root = SHARED / "data" / "invoices"
    pdfs = sorted(root.glob("*.pdf"))[:limit]
    pred = work / "invoices"
    pred.mkdir()
    seconds = await predict(pdfs, INVOICE_FIELDS, pred)
    gt = work / "invoices-gt"
    gt.mkdir()
    for pdf in pdfs:
        expected = json.loads((root / f"{pdf.stem}.json").read_text())
        record = expected[0] if isinstance(expected, list) else expected
        keep = {f.name: record.get(f.name) for f in INVOICE_FIELDS if record.get(f.name)}
        (gt / f"{pdf.stem}.json").write_text(json.dumps(keep))
    report("Invoices (PDF)", seconds)
    score(gt, pred, INVOICE_FIELDS, "date=date,amount=amount")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["all", "sroie", "invoices"], default="all")
    parser.add_argument("--limit", type=int, default=10_000)
    args = parser.parse_args()
    if not SCORER.exists():
        sys.exit(f"{SCORER} not found: the shared material must sit beside the repository")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.set in ("all", "sroie"):
            await sroie(args.limit, work)
        if args.set in ("all", "invoices"):
            await invoices(args.limit, work)


if __name__ == "__main__":
    asyncio.run(main())
