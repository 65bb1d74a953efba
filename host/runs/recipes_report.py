"""The recipe comparison as files: recipes.json (saved after every row), recipes.md and recipes.png."""

from __future__ import annotations

import json
import os
from pathlib import Path

from host.runs.recipes import Comparison, RecipeRow

JSON_NAME, MARKDOWN_NAME, CHART_NAME = "recipes.json", "recipes.md", "recipes.png"


def save_json(comparison: Comparison, out: Path) -> Path:
    """Write recipes.json atomically: a reader (or an interrupted run) never sees half a file."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / JSON_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(comparison.to_json(), indent=1) + "\n")
    os.replace(tmp, path)
    return path


def _seconds(row: RecipeRow) -> str:
    if row.recipe == "float":
        return "-"
    if row.seconds is None:
        return "cached (time not recorded)"
    return f"{row.seconds:.0f}" + (" (cached)" if row.cached else "")


def _latency(row: RecipeRow) -> str:
    return "-" if row.simulated_latency_ms is None else f"{row.simulated_latency_ms['total']:.0f}"


def markdown(comparison: Comparison) -> str:
    """The table the docs show, with what was compared and how."""
    c = comparison
    lines = [
        f"# Quantization recipes: {Path(c.model).name} @ {c.imgsz} for {c.target}",
        "",
        f"Scored on {c.images} labelled images ({c.objects} objects, `{c.data}`, sha256 {c.data_sha256[:16]}...) "
        "through the bit-exact host reference of the device (ESP-DL letterbox, simulated int8/int16 network, "
        f"ESP-DL postprocess) at score {c.evaluation['score_thr']}, NMS {c.evaluation['nms_thr']}, "
        f"top-k {c.evaluation['top_k']}; float: the float ONNX on the same letterbox.",
        "",
        f"| recipe | mAP50-95 | mAP50 | drop from float | .espdl size (bytes) | int16 layers | "
        f"quantize time (s) | simulated {c.target} latency (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in c.rows:
        size = f"{row.size_bytes:,}" + (" (float ONNX)" if row.recipe == "float" else "")
        int16 = "-" if row.int16_layers is None else str(row.int16_layers)
        lines.append(f"| {row.recipe} | {row.map50_95:.4f} | {row.map50:.4f} | {row.drop:+.4f} | {size} | "
                     f"{int16} | {_seconds(row)} | {_latency(row)} |")
    lines += ["", f"Latency: {c.latency_note}.",
              "Quantize time: wall-clock seconds of the whole build (export, calibration, training, export, "
              "test-value alignment) on the machine that built it; `(cached)` is the time recorded when the "
              "cache entry was built.",
              "", f"Command: `{c.command}`"]
    if not c.complete:
        lines += ["", "**Incomplete**: the comparison stopped before every recipe was scored."]
    return "\n".join(lines) + "\n"


def bar_chart(comparison: Comparison, path: Path) -> Path:
    """mAP50-95 and mAP50 per recipe, the float model's mAP50-95 as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = comparison.rows
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2.5, 3.6))
    ax.bar(x - 0.2, [r.map50_95 for r in rows], 0.4, label="mAP50-95")
    ax.bar(x + 0.2, [r.map50 for r in rows], 0.4, label="mAP50")
    for row in rows:
        if row.recipe == "float":
            ax.axhline(row.map50_95, color="grey", linestyle="--", linewidth=1, label="float mAP50-95")
    for i, row in enumerate(rows):
        ax.annotate(f"{row.map50_95:.3f}", (i - 0.2, row.map50_95), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [r.recipe for r in rows])
    low = min(r.map50_95 for r in rows)
    ax.set_ylim(max(0.0, low - 0.1), 1.0)
    ax.set_ylabel("mAP")
    ax.set_title(f"{Path(comparison.model).name} @ {comparison.imgsz}, {comparison.target}, "
                 f"{comparison.images} images", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_all(comparison: Comparison, out: Path) -> dict[str, Path]:
    """recipes.json, recipes.md and recipes.png in `out` (the chart only when a row exists)."""
    paths = {"json": save_json(comparison, out)}
    (out / MARKDOWN_NAME).write_text(markdown(comparison))
    paths["markdown"] = out / MARKDOWN_NAME
    if comparison.rows:
        paths["chart"] = bar_chart(comparison, out / CHART_NAME)
    return paths
