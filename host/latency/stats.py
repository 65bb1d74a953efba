"""Robust statistics of per-run stage timings: median, p90, min, max, MAD and a CI for the median.

The confidence interval is distribution-free (binomial order statistics), so it needs no normality
assumption about device timings, whose tails are long (cache misses, interrupts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class StageStats:
    n: int
    median: float
    p90: float
    min: float
    max: float
    mad: float
    ci_low: float  # confidence interval of the median (order statistics)
    ci_high: float
    confidence: float

    def to_json(self) -> dict:
        return asdict(self)


def median_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Order-statistic interval [x_(l), x_(u)] covering the median with at least `confidence`."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n < 3:
        return float(x[0]), float(x[-1])
    alpha = 1.0 - confidence
    lo = int(sps.binom.ppf(alpha / 2, n, 0.5))
    hi = int(sps.binom.isf(alpha / 2, n, 0.5))
    lo = max(0, min(lo, n - 1) - 1) if lo > 0 else 0
    hi = min(n - 1, hi)
    return float(x[lo]), float(x[hi])


def stage_stats(values, confidence: float = 0.95) -> StageStats:
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no timings to summarise")
    med = float(np.median(x))
    lo, hi = median_ci(x, confidence)
    return StageStats(int(x.size), med, float(np.percentile(x, 90)), float(x.min()), float(x.max()),
                      float(np.median(np.abs(x - med))), lo, hi, confidence)
