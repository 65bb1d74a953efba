"""Latency plots for the HTML report: per-stage distributions of one result, and a baseline's trend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STAGES = ("pre", "model", "post")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def distribution_plot(result: dict[str, Any], path: Path, label: str) -> Path:
    """One box plot per stage (ms), every run of every window, with the window medians marked."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for ax, stage in zip(axes, STAGES):
        runs = [[v / 1000 for v in w[stage]] for w in result["windows"]]
        ax.boxplot(runs, showfliers=True)
        ax.set_title(f"{stage} ({label})", fontsize=9)
        ax.set_xlabel("window")
        ax.set_ylabel("ms")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def trend_plot(baseline: dict[str, Any], current_medians_us: dict[str, float] | None, path: Path) -> Path:
    """Median per stage over the baseline's history, with the current run as the last point."""
    plt = _plt()
    history = baseline.get("history", [])
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for ax, stage in zip(axes, STAGES):
        values = [h["medians_us"][stage] / 1000 for h in history]
        ax.plot(range(len(values)), values, marker="o", label="baseline history")
        if current_medians_us:
            ax.plot([len(values)], [current_medians_us[stage] / 1000], marker="*", markersize=12, label="this run")
        ax.set_title(stage, fontsize=9)
        ax.set_ylabel("median ms")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
