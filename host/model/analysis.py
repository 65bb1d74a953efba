"""Quantization error analysis: per-layer noise/signal ratios, saved as JSON, a table and a bar chart.

Graphwise: the error each layer's output carries with every layer before it quantized (what the
device computes). Layerwise: the error a layer adds when it alone is quantized, which points at
the layers worth moving to int16 in the `mixed` preset. Both are ESP-PPQ's own analyses, run on
the calibration images the model was quantized with.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from host.model import calib as calib_mod
from host.model.progress import stage


def analyse(model, calib_dir: Path | None, layerwise: bool = False, steps: int = 4) -> dict[str, dict[str, float]]:
    """Noise/signal ratios per computing layer of a QuantizedModel, worst first per analysis."""
    import torch
    from esp_ppq.api import load_native_graph
    from esp_ppq.quantization.analyse import graphwise_error_analyse, layerwise_error_analyse

    if model.graph_path is None:
        from host.errors import HarnessError

        raise HarnessError("error analysis needs the ESP-PPQ graph; a prequantized .espdl has none: quantize from .pt or .onnx")
    graph = load_native_graph(str(model.graph_path))
    mode = model.summary.get("spec", {}).get("calib", {}).get("mode", "letterbox")
    images = calib_mod.calibration_tensors(calib_mod.find_calibration_set(calib_dir), model.imgsz, mode)
    batches = [torch.from_numpy(images[i:i + 8]) for i in range(0, len(images), 8)]
    steps = min(steps, len(batches))
    results: dict[str, dict[str, float]] = {}
    with stage("graphwise error analysis"):
        graphwise = graphwise_error_analyse(graph, running_device="cpu", dataloader=batches,
                                            collate_fn=lambda x: x, steps=steps, verbose=False)
        results["graphwise"] = _worst_first(graphwise)
    if layerwise:
        with stage("layerwise error analysis (about a minute at 320)"):
            per_layer = layerwise_error_analyse(graph, dataloader=batches, collate_fn=lambda x: x,
                                                running_device="cpu", steps=steps, verbose=False)
            results["layerwise"] = _worst_first({k: (v[0] if isinstance(v, tuple) else v) for k, v in per_layer.items()})
    return results


def _worst_first(values: dict) -> dict[str, float]:
    return dict(sorted(((k, float(v)) for k, v in values.items()), key=lambda kv: -kv[1]))


def format_table(ratios: dict[str, float], limit: int = 20) -> str:
    """The tutorial's table: layer, noise:signal power ratio, worst first."""
    width = max([len(k) for k in ratios] + [5])
    lines = [f"{'Layer':<{width}} | NOISE:SIGNAL POWER RATIO"]
    for name, value in list(ratios.items())[:limit]:
        bar = "█" * int(min(value, 1.0) * 40)
        lines.append(f"{name:<{width}} | {bar:<40} {value * 100:.3f}%")
    return "\n".join(lines)


def save(results: dict[str, dict[str, float]], out_dir: Path, limit: int = 30) -> list[Path]:
    """Write analysis.json and one bar chart PNG per analysis; return the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "analysis.json"]
    written[0].write_text(json.dumps(results, indent=1))
    for kind, ratios in results.items():
        names = list(ratios)[:limit][::-1]
        values = np.array([ratios[n] for n in names]) * 100
        fig, ax = plt.subplots(figsize=(9, 0.25 * len(names) + 1.2))
        ax.barh(range(len(names)), values, color="#c0392b")
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("noise : signal power ratio (%)")
        ax.set_title(f"{kind} quantization error, worst {len(names)} layers")
        fig.tight_layout()
        path = out_dir / f"{kind}_error.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
