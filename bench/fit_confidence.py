"""Fit the confidence model on the shared receipts' training split and write
services/extract/calibration.json.

    .venv/bin/python -m bench.fit_confidence

Logistic regression (L2, Newton's method) of "the scorer counts the value right" on the
signals of `services.extract.confidence.Signals`, over every (receipt, field) of
../shared/data/sroie-train. The review threshold is the highest confidence that flags at
most a fifth of the training values (unverified values are flagged whatever their
confidence). Gemini's `method:model` weight cannot be fitted here (no Gemini answers): it
is set to the `method:label` weight, a prior the docs name as such. Deterministic: the same
data gives the same file.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import numpy as np

from bench.trust_data import Labelled, labelled
from services.extract.confidence import CALIBRATION, confidence
from services.jobs.domain.review import needs_review

MAX_FLAGGED = 0.20
L2 = 1.0


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cached-only", action="store_true", help="skip documents not yet OCRed")
    args = parser.parse_args()
    rows = asyncio.run(labelled("sroie-train", cached_only=args.cached_only))
    weights = fit(rows)
    weights["method:model"] = weights.get("method:label", 0.0)
    threshold = choose_threshold(rows, weights)
    right = sum(r.right for r in rows)
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
    share = flagged(rows, weights, threshold) / len(rows)
    print(f"fitted on {len(rows)} values ({right} right); threshold {threshold} flags {share:.1%}")
    print(f"wrote {CALIBRATION}")


if __name__ == "__main__":
    main()
