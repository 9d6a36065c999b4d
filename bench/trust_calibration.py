"""Trust in results, measured: how many wrong values the review queue catches, and whether
confidence means what it says.

    .venv/bin/python -m bench.trust_calibration [--cached-only]

On ../shared/data (sroie-dev: 50 receipt photos, OCR; invoices: 11 PDFs) the offline
extractor runs as in production, the platform verifies its evidence and scores each value
(services/extract/trust/confidence.py, fitted on sroie-train by bench/fit_confidence.py); the
shared scorer's business-level match (score_fields.norm_form) says which values are right.
Prints, per set: the share of values flagged "needs review" at the platform's threshold and
the share of wrong values among them; the same at the highest threshold that flags at most
20% of that set's values; per field; and the reliability table (predicted confidence bucket
against observed accuracy, with the expected calibration error). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.fit_confidence import cross_fitted
from bench.trust_data import Labelled, labelled
from services.extract.trust.confidence import confidence, review_threshold
from services.jobs.domain.results.review import needs_review

MAX_FLAGGED = 0.20
BUCKETS = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.0)]


def flags(rows: list[Labelled], threshold: float) -> list[bool]:
    return [
        needs_review(
            {
                "confidence": confidence(r.signals),
                "verified": r.signals.quote_found and r.signals.holds > 0,
            },
            None if r.signals.empty else r.signals.value,
            threshold,
        )
        for r in rows
    ]


def caught(rows: list[Labelled], threshold: float) -> tuple[float, float, int, int]:
    """(share flagged, share of errors flagged, errors, errors flagged)."""
    flagged = flags(rows, threshold)
    errors = [f for r, f in zip(rows, flagged, strict=True) if not r.right]
    return (
        sum(flagged) / max(len(rows), 1),
        sum(errors) / max(len(errors), 1),
        len(errors),
        sum(errors),
    )


def best_threshold(rows: list[Labelled]) -> float:
    best = 0.0
    for t in sorted({confidence(r.signals) for r in rows}):
        if sum(flags(rows, t)) <= MAX_FLAGGED * len(rows):
            best = t
    return best


def report(title: str, rows: list[Labelled]) -> None:
    right = sum(r.right for r in rows)
    if not rows:
        print(f"\n== {title}: no values (nothing cached yet?)")
        return
    print(f"\n== {title}: {len(rows)} values, {right} right ({right / len(rows):.1%})")
    platform = review_threshold()
    for label, t in (("platform threshold", platform), ("<=20% on this set", best_threshold(rows))):
        share, share_errors, errors, hit = caught(rows, t)
        print(
            f"  {label:20} {t:.3f}: flags {share:.1%} of values, "
            f"catches {hit}/{errors} wrong values ({share_errors:.1%})"
        )
    print("  per field (platform threshold): values, wrong, caught, flagged")
    for field in sorted({r.field for r in rows}):
        some = [r for r in rows if r.field == field]
        share, _, errors, hit = caught(some, platform)
        print(f"    {field:16} {len(some):4} {errors:4} {hit:4}   {share:.0%}")
    print("  reliability: confidence bucket, values, mean confidence, observed accuracy")
    ece = 0.0
    for low, high in BUCKETS:
        inside = [
            r
            for r in rows
            if low <= confidence(r.signals) < high or (high == 1.0 and confidence(r.signals) == 1.0)
        ]
        if not inside:
            print(f"    [{low:.2f}, {high:.2f})      0")
            continue
        mean = sum(confidence(r.signals) for r in inside) / len(inside)
        accuracy = sum(r.right for r in inside) / len(inside)
        ece += len(inside) / len(rows) * abs(mean - accuracy)
        print(f"    [{low:.2f}, {high:.2f}) {len(inside):6} {mean:8.3f} {accuracy:8.3f}")
    print(f"  expected calibration error {ece:.3f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cached-only", action="store_true", help="skip documents not yet OCRed")
    parser.add_argument("--train", action="store_true", help="report on sroie-train as well")
    args = parser.parse_args()
    sets = ["sroie-dev", "invoices"] + (["sroie-train"] if args.train else [])
    every: list[Labelled] = []
    for name in sets:
        rows = await labelled(name, cached_only=args.cached_only)
        if name == "sroie-train":
            # Its own words are in the vocabulary: score each value as the fit saw it.
            rows = cross_fitted(rows)
        report(name, rows)
        if name != "sroie-train":
            every += rows
    report("sroie-dev + invoices", every)


if __name__ == "__main__":
    asyncio.run(main())
