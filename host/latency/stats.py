"""Robust statistics of per-run stage timings: median, p90, min, max, MAD and a CI for the median.

The confidence interval is distribution-free (binomial order statistics, scipy's `quantile_test`), so
it needs no normality assumption about device timings, whose tails are long (cache misses, interrupts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import quantile_test


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
    """Order-statistic interval [x_(l), x_(u)] covering the median with at least `confidence`.

    scipy returns NaN for an end that no order statistic reaches at this confidence (too few runs,
    e.g. n < 6 at 95 %); that end is then the sample's min or max, the widest interval there is.
    """
    x = np.asarray(values, dtype=float)
    ci = quantile_test(x, q=float(np.median(x)), p=0.5).confidence_interval(confidence)
    low = float(x.min()) if np.isnan(ci.low) else float(ci.low)
    high = float(x.max()) if np.isnan(ci.high) else float(ci.high)
    return low, high


def stage_stats(values, confidence: float = 0.95) -> StageStats:
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no timings to summarise")
    med = float(np.median(x))
    lo, hi = median_ci(x, confidence)
    return StageStats(int(x.size), med, float(np.percentile(x, 90)), float(x.min()), float(x.max()),
                      float(np.median(np.abs(x - med))), lo, hi, confidence)
