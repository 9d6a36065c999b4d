"""Fit the confidence model on the shared receipts' training split and write
services/extract/trust/calibration.json and services/extract/trust/vocabulary.json.

    .venv/bin/python -m bench.fit_confidence [--cached-only] [--cross-validate]

Logistic regression (L2, Newton's method) of "the scorer counts the value right" on the
signals of `services.extract.trust.confidence.Signals`, over every (receipt, field) of
../shared/data/sroie-train. The review threshold is the highest confidence that flags at
most a fifth of the training values (unverified values are flagged whatever their
confidence). Gemini's `method:model` weight cannot be fitted here (no Gemini answers): it
is set to the `method:label` weight, a prior the docs name as such. Deterministic: the same
data gives the same file.

The vocabulary (services/extract/trust/vocabulary.py) is fitted on the same receipts' text, so a
training value's own document would make its words familiar: each training value's
`unfamiliar` share is cross-fitted, computed with the vocabulary of the other folds'
documents only, as a value of an unseen document is in production. `--cross-validate`
also reports, over ten shuffles of the documents into five folds, the share of wrong values
caught by a model and threshold fitted on the other folds (vocabulary included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from dataclasses import replace

import numpy as np

from bench.trust_data import Labelled, labelled
from services.extract.trust.confidence import CALIBRATION, confidence
from services.extract.trust.vocabulary import VOCABULARY, familiar_words, unfamiliar
from services.jobs.domain.results.review import needs_review

MAX_FLAGGED = 0.20
# The penalty that caught the most wrong values in repeated cross-validation on the training
# documents (0.1: 62.5%, 0.3: 64.4%, 0.5: 63.6%, 1.0: 63.7%; 10 x 5 folds).
L2 = 0.3
FOLDS = 5
REPEATS = 10


def fold_of(rows: list[Labelled], folds: int = FOLDS, seed: int | None = None) -> dict[str, int]:
    """Each document's fold: documents in name order (or shuffled by `seed`), dealt round."""
    documents = sorted({r.document for r in rows})
    if seed is not None:
        random.Random(seed).shuffle(documents)
    return {d: i % folds for i, d in enumerate(documents)}


def vocabulary(rows: list[Labelled], leave_out: set[str] | None = None) -> frozenset[str]:
    """The familiar words of the rows' documents, but those in `leave_out`."""
    printed = {r.document: r.words for r in rows if r.document not in (leave_out or set())}
    return familiar_words(printed.values())


def with_vocabulary(row: Labelled, known: frozenset[str]) -> Labelled:
    if row.signals.kind not in ("organisation", "address"):
        return row
    share = unfamiliar(row.signals.value, known)
    return replace(row, signals=replace(row.signals, unfamiliar=share))


def cross_fitted(rows: list[Labelled], folds: int = FOLDS) -> list[Labelled]:
    """The rows, each value's `unfamiliar` share from the other folds' documents' words."""
    fold = fold_of(rows, folds)
    known = [vocabulary(rows, {d for d, k in fold.items() if k == n}) for n in range(folds)]
    return [with_vocabulary(r, known[fold[r.document]]) for r in rows]


def fit(rows: list[Labelled]) -> dict[str, float]:
    names = sorted({name for r in rows for name in r.signals.features()})
    x = np.array([[r.signals.features().get(n, 0.0) for n in names] for r in rows])
    y = np.array([1.0 if r.right else 0.0 for r in rows])
    w = np.zeros(len(names))
    penalty = np.full(len(names), L2)
    penalty[names.index("bias")] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x.T * (p * (1 - p))) @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return {n: round(float(v), 4) for n, v in zip(names, w, strict=True)}


def flagged(rows: list[Labelled], weights: dict[str, float], threshold: float) -> int:
    return sum(
        needs_review(
            {
                "confidence": confidence(r.signals, weights),
                "verified": r.signals.quote_found and r.signals.holds > 0,
            },
            None if r.signals.empty else r.signals.value,
            threshold,
        )
        for r in rows
    )


def choose_threshold(rows: list[Labelled], weights: dict[str, float]) -> float:
    candidates = sorted({confidence(r.signals, weights) for r in rows} | {0.0})
    best = 0.0
    for t in candidates:
        if flagged(rows, weights, t) <= MAX_FLAGGED * len(rows):
            best = t
    return best


def fitted(rows: list[Labelled]) -> tuple[dict[str, float], float]:
    """Weights and review threshold fitted on `rows` (their vocabulary cross-fitted)."""
    honest = cross_fitted(rows)
    weights = fit(honest)
    weights["method:model"] = weights.get("method:label", 0.0)
    return weights, choose_threshold(honest, weights)


def cross_validate(
    rows: list[Labelled], folds: int = FOLDS, repeats: int = REPEATS
) -> tuple[int, int, int, int]:
    """(values scored, values flagged, wrong values, wrong values flagged) over `repeats`
    shuffles of the documents into folds, each fold's values scored by the model, threshold
    and vocabulary fitted on the other folds."""
    scored = total = errors = hit = 0
    for seed in range(repeats):
        fold = fold_of(rows, folds, seed)
        for n in range(folds):
            held = {d for d, k in fold.items() if k == n}
            rest = [r for r in rows if r.document not in held]
            weights, threshold = fitted(rest)
            known = vocabulary(rest)
            for r in (with_vocabulary(r, known) for r in rows if r.document in held):
                flag = flagged([r], weights, threshold)
                scored += 1
                total += flag
                errors += not r.right
                hit += flag and not r.right
    return scored, total, errors, hit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cached-only", action="store_true", help="skip documents not yet OCRed")
    parser.add_argument(
        "--cross-validate", action="store_true", help="report the catch rate across folds"
    )
    args = parser.parse_args()
    rows = asyncio.run(labelled("sroie-train", cached_only=args.cached_only))
    weights, threshold = fitted(rows)
    right = sum(r.right for r in rows)
    known = vocabulary(rows)
    VOCABULARY.write_text(
        json.dumps({"fitted_on": "sroie-train", "words": sorted(known)}, indent=0) + "\n"
    )
    CALIBRATION.write_text(
        json.dumps(
            {
                "fitted_on": "sroie-train",
                "values": len(rows),
                "right": right,
                "review_threshold": threshold,
                "weights": dict(sorted(weights.items())),
            },
            indent=2,
        )
        + "\n"
    )
    share = flagged(cross_fitted(rows), weights, threshold) / len(rows)
    print(f"fitted on {len(rows)} values ({right} right); threshold {threshold} flags {share:.1%}")
    print(f"wrote {CALIBRATION} and {VOCABULARY} ({len(known)} words)")
    if args.cross_validate:
        scored, total, errors, hit = cross_validate(rows)
        print(
            f"{REPEATS} x {FOLDS}-fold cross-validation on the training documents: flags "
            f"{total / scored:.1%} of values, catches {hit}/{errors} wrong values "
            f"({hit / max(errors, 1):.1%})"
        )


if __name__ == "__main__":
    main()
