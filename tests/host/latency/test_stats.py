"""The median's confidence interval (scipy's quantile_test) gives the intervals the hand-written
order-statistic code gave before it, including where too few runs reach the confidence (min..max)."""

from __future__ import annotations

import numpy as np
import pytest

from host.latency.stats import median_ci, stage_stats

N20 = [5213.0, 5186.0, 5267.0, 5211.0, 5145.0, 5238.0, 5337.0, 5299.0, 5127.0, 5070.0,
       5136.0, 5204.0, 4964.0, 5177.0, 5072.0, 5124.0, 5144.0, 5167.0, 5243.0, 5310.0]
N100 = [550000.0 + (i * 7919) % 1001 - 500 for i in range(100)]


# Expected values: what host/latency/stats.py's previous binomial order-statistic code returned.
@pytest.mark.parametrize("values, confidence, expected", [
    ([5200.0], 0.95, (5200.0, 5200.0)),
    ([5300.0, 5100.0], 0.95, (5100.0, 5300.0)),
    ([5230.0, 5190.0, 5260.0, 5205.0], 0.9, (5190.0, 5260.0)),  # unreachable: min..max
    ([5200.0, 5310.0, 5150.0, 5290.0, 5230.0], 0.99, (5150.0, 5310.0)),
    ([7.0, 3.0, 3.0, 9.0, 1.0, 3.0, 8.0, 2.0, 3.0], 0.95, (2.0, 8.0)),  # ties
    ([7.0, 3.0, 3.0, 9.0, 1.0, 3.0, 8.0, 2.0, 3.0], 0.99, (1.0, 9.0)),
    (N20, 0.9, (5136.0, 5238.0)),
    (N20, 0.95, (5136.0, 5238.0)),
    (N20, 0.99, (5124.0, 5267.0)),
    (N100, 0.9, (549922.0, 550099.0)),
    (N100, 0.95, (549900.0, 550121.0)),
    (N100, 0.99, (549877.0, 550144.0)),
])
def test_median_ci_is_unchanged(values, confidence, expected) -> None:
    assert median_ci(np.array(values), confidence) == expected


def test_stage_stats_orders_its_fields() -> None:
    s = stage_stats(N100)
    assert s.n == 100 and s.confidence == 0.95
    assert s.min < s.ci_low < s.median < s.ci_high < s.max
    assert (s.ci_low, s.ci_high) == (549900.0, 550121.0)
    with pytest.raises(ValueError, match="no timings"):
        stage_stats([])
