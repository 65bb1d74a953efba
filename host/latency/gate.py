"""The latency regression gate: fail only on a regression that is both real and large enough to matter.

A stage fails when (1) its runs are slower than the baseline's with statistical significance
(one-sided Mann-Whitney U, p < `alpha`, as asv does) and (2) a slowdown of `threshold` (default 5 %)
or more is plausible: the upper end of the bootstrap confidence interval of the ratio of medians
reaches it. Rule (1) keeps noise from failing the gate; rule (2) keeps a significant but negligible
change from failing it, and makes a true 5 % slowdown fail almost always instead of half the time.
Improvements beyond the same bounds warn, so the baseline gets updated. Absolute budgets per stage
are a second, optional rule. Results of different DUT kinds, chips, revisions, models, input sizes
or firmware configs are never compared.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import mannwhitneyu

from host.errors import HarnessError

STAGES = ("pre", "model", "post")
#: What must be equal for two latency results to be comparable.
COMPARABLE_KEYS = ("dut_kind", "target", "chip_revision", "model_sha256", "imgsz", "firmware_config")


@dataclass(frozen=True)
class GateSettings:
    threshold: float = 0.05
    alpha: float = 0.001
    confidence: float = 0.99
    bootstrap: int = 2000
    seed: int = 0


@dataclass(frozen=True)
class StageVerdict:
    stage: str
    status: str  # "pass" | "fail" | "improved" | "over-budget"
    change: float  # relative change of the median, current / baseline - 1
    ci_low: float
    ci_high: float
    p_slower: float
    p_faster: float
    baseline_median_us: float
    current_median_us: float
    message: str

    def to_json(self) -> dict:
        return asdict(self)


def check_comparable(current: dict, baseline: dict) -> None:
    """Refuse to compare results of different setups; the message lists every difference."""
    diffs = [f"{k}: {baseline.get(k)!r} (baseline) vs {current.get(k)!r} (now)"
             for k in COMPARABLE_KEYS if current.get(k) != baseline.get(k)]
    if diffs:
        raise HarnessError("latency results are not comparable: " + "; ".join(diffs)
                           + ". Create a baseline for this setup with `python -m host latency create <latency.json>`")


def ratio_ci(current: np.ndarray, baseline: np.ndarray, settings: GateSettings) -> tuple[float, float]:
    """Bootstrap interval of median(current) / median(baseline) - 1 (seeded: the same data, the same answer)."""
    rng = np.random.default_rng(settings.seed)
    cur = rng.choice(current, size=(settings.bootstrap, current.size), replace=True)
    base = rng.choice(baseline, size=(settings.bootstrap, baseline.size), replace=True)
    ratios = np.median(cur, axis=1) / np.median(base, axis=1) - 1.0
    tail = (1.0 - settings.confidence) / 2
    return float(np.quantile(ratios, tail)), float(np.quantile(ratios, 1 - tail))


def gate_stage(stage: str, current: np.ndarray, baseline: np.ndarray, settings: GateSettings = GateSettings(),
               budget_us: float | None = None) -> StageVerdict:
    current = np.asarray(current, dtype=float)
    baseline = np.asarray(baseline, dtype=float)
    if current.size < 3 or baseline.size < 3:
        raise HarnessError(f"stage {stage}: need at least 3 runs on each side to gate (have {current.size} and "
                           f"{baseline.size}); raise --bench-runs")
    med_cur, med_base = float(np.median(current)), float(np.median(baseline))
    change = med_cur / med_base - 1.0
    low, high = ratio_ci(current, baseline, settings)
    p_slower = float(mannwhitneyu(current, baseline, alternative="greater").pvalue)
    p_faster = float(mannwhitneyu(current, baseline, alternative="less").pvalue)
    t = settings.threshold
    if p_slower < settings.alpha and high >= t:
        status = "fail"
        message = (f"{stage} is {change:+.1%} slower than the baseline (CI {low:+.1%}..{high:+.1%}, "
                   f"p={p_slower:.1e}): a regression of {t:.0%} or more cannot be ruled out")
    elif p_faster < settings.alpha and low <= -t:
        status = "improved"
        message = (f"{stage} is {change:+.1%} faster than the baseline (p={p_faster:.1e}): update the baseline "
                   "with `python -m host latency update <latency.json> --reason ...`")
    else:
        status = "pass"
        message = f"{stage} {change:+.2%} (CI {low:+.2%}..{high:+.2%}), within the gate"
    if budget_us is not None and med_cur > budget_us:
        status = "over-budget" if status != "fail" else status
        message += f"; median {med_cur / 1000:.1f} ms exceeds the budget of {budget_us / 1000:.1f} ms"
    return StageVerdict(stage, status, change, low, high, p_slower, p_faster, med_base, med_cur, message)


def gate(current: dict, baseline: dict, settings: GateSettings = GateSettings(),
         budgets_us: dict[str, float] | None = None) -> list[StageVerdict]:
    """Gate every stage of a latency result against a baseline of the same setup."""
    check_comparable(current["meta"], baseline["meta"])
    verdicts = []
    for stage in STAGES:
        cur = np.concatenate([np.asarray(w[stage]) for w in current["windows"]])
        base = np.concatenate([np.asarray(w[stage]) for w in baseline["windows"]])
        verdicts.append(gate_stage(stage, cur, base, settings, (budgets_us or {}).get(stage)))
    return verdicts


def failed(verdicts: list[StageVerdict]) -> bool:
    return any(v.status in ("fail", "over-budget") for v in verdicts)
