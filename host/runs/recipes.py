"""Espressif's YOLO11n quantization recipes side by side, scored the way the device would score them.

The tutorial compares 8-bit PTQ, mixed precision and QAT by mAP on COCO. Here every recipe is a preset of
`host.model.quantize_model` (so the .espdl compared is the one a user would flash), and its accuracy on a
labelled set comes from the bit-exact host reference of the device (ESP-DL letterbox, the PPQ-simulated
int8/int16 network, ESP-DL's postprocess) at mAP settings (score 0.001, top-k 300, NMS 0.7). The float
row is the float split-head ONNX on the same letterbox with a float decode: the ceiling every drop is
measured from. Latency is the simulated DUT's model (host.dut.sim.latency), never a measurement.

Each finished recipe is written to `recipes.json` at once (atomically), so an interrupted comparison keeps
what it finished; the Markdown table and the chart are written from that file (host.runs.recipes_report).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from host.errors import HarnessError

RECIPES = ("float", "int8", "mixed", "tutorial", "qat")
EVALUATION = {"score_thr": 0.001, "nms_thr": 0.7, "top_k": 300}  # mAP settings, as ultralytics' val


@dataclass
class RecipeRow:
    """One recipe's figures; `drop` is mAP50-95 lost against the float row (positive: worse than float)."""

    recipe: str
    map50_95: float
    map50: float
    drop: float
    size_bytes: int
    seconds: float | None  # quantization wall time (None: float, or a cache entry that did not record it)
    cached: bool = False  # built by an earlier run: `seconds` is that build's time
    int16_layers: int | None = None
    int16_layer_names: list[str] = field(default_factory=list)
    simulated_latency_ms: dict[str, float] | None = None  # pre/model/post/total, modelled (host.dut.sim.latency)
    sha256: str = ""
    preset: dict[str, Any] = field(default_factory=dict)
    qat: dict[str, Any] | None = None


@dataclass
class Comparison:
    """The comparison's settings and the rows finished so far, in the order the recipes were asked for."""

    model: str
    model_sha256: str
    target: str
    imgsz: int
    data: str
    data_sha256: str
    images: int
    objects: int
    data_problems: dict[str, int]
    fresh_cache: bool
    command: str
    evaluation: dict[str, Any] = field(default_factory=lambda: dict(EVALUATION))
    latency_note: str = ("simulated: host.dut.sim.latency's model of Espressif's published YOLO11n figures "
                         "(int16 MACs assumed to cost 2 int8 MACs); not measured on a board")
    rows: list[RecipeRow] = field(default_factory=list)
    complete: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_recipes(text: str) -> list[str]:
    """`float,int8,...` as a list, refusing unknown and repeated names (before anything is built)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in RECIPES]
    if unknown or not names:
        raise HarnessError(f"--recipes {text!r}: unknown recipe {', '.join(unknown) or '(none given)'}; "
                           f"choose from {','.join(RECIPES)}")
    if len(set(names)) != len(names):
        raise HarnessError(f"--recipes {text!r} names a recipe twice; list each once")
    return names


def simulated_latency_ms(espdl_path: Path, target: str, imgsz: int) -> dict[str, float]:
    """The simulated DUT's noise-free latency of this .espdl (pre, model, post, total in ms)."""
    from host.dut.sim.latency import LatencyModel, count_macs
    from host.espdl.model import load

    model = load(espdl_path)
    latency = LatencyModel(target, imgsz, count_macs(model), int16_layers=frozenset(model.int16_nodes()))
    stages = {stage: round(latency.base_us[stage] / 1000, 1) for stage in ("pre", "model", "post")}
    return {**stages, "total": round(sum(latency.base_us.values()) / 1000, 1)}


def score(dataset, detect: Callable, label: str) -> tuple[float, float]:
    """mAP50-95 and mAP50 of `detect(rgb) -> boxes` over the labelled set (a progress bar on stderr)."""
    from tqdm import tqdm

    from host.accuracy.coco import evaluate
    from host.chip.preprocess import load_image

    items = tqdm(dataset.items, desc=f"[recipes] {label}", unit="img", file=sys.stderr, dynamic_ncols=True)
    accuracy = evaluate(dataset, {item.image.name: detect(load_image(item.image)) for item in items})
    return accuracy.map50_95, accuracy.map50


def quantized_row(name: str, model, dataset, seconds: float, float_map: float) -> RecipeRow:
    """A quantized recipe's row: the device-exact reference's accuracy and the .espdl's figures."""
    from host.espdl.model import load
    from host.reference.reference import reference

    map50_95, map50 = score(dataset, lambda rgb: reference(rgb, model, model.target, **EVALUATION).boxes, name)
    int16 = load(model.espdl_path).int16_nodes()
    qat = model.summary.get("qat")
    return RecipeRow(
        recipe=name, map50_95=round(map50_95, 4), map50=round(map50, 4), drop=round(float_map - map50_95, 4),
        size_bytes=model.espdl_path.stat().st_size,
        seconds=model.summary.get("build_seconds") if model.cached else round(seconds, 1), cached=model.cached,
        int16_layers=len(int16), int16_layer_names=int16,
        simulated_latency_ms=simulated_latency_ms(model.espdl_path, model.target, model.imgsz),
        sha256=model.sha256, preset=model.summary.get("spec", {}).get("preset", {}),
        qat={k: qat[k] for k in ("epochs", "lr", "batch", "steps", "images") if k in qat} if qat else None,
    )


def float_row(onnx_path: Path, dataset, imgsz: int) -> RecipeRow:
    """The float model on the device's letterbox: the ceiling the drops are measured from."""
    from host.accuracy.float_model import FloatDetector
    from host.chip.detection import Thresholds

    detector, thresholds = FloatDetector(onnx_path, imgsz), Thresholds(**EVALUATION)
    map50_95, map50 = score(dataset, lambda rgb: detector.detect(rgb, thresholds), "float")
    return RecipeRow(recipe="float", map50_95=round(map50_95, 4), map50=round(map50, 4), drop=0.0,
                     size_bytes=onnx_path.stat().st_size, seconds=None)


def compare(comparison: Comparison, recipes: list[str], presets: dict[str, Any], dataset, model_path: str,
            quantize: Callable[..., Any], on_row: Callable[[Comparison], None],
            log: Callable[[str], None]) -> Comparison:
    """Quantize and score each recipe in turn; `on_row` is called after every finished row (to save it).

    The float figures are needed for every drop, so they come first, from the float ONNX the first
    quantization exported (the float row itself is listed only when asked for). `quantize(model, preset)`
    builds one recipe (the caller chooses the cache).
    """
    quantized = [name for name in recipes if name != "float"]
    order = quantized or ["int8"]  # only "float" asked: the int8 build exports the float ONNX
    built: dict[str, tuple[Any, float]] = {}
    float_result: RecipeRow | None = None
    for name in order:
        log(f"{name}: quantizing ({'from cache if built before' if not comparison.fresh_cache else 'fresh cache'})")
        started = time.perf_counter()
        model = quantize(model_path, presets[name])
        built[name] = (model, time.perf_counter() - started)
        if float_result is None:
            log(f"float: scoring the float ONNX on {comparison.images} images")
            float_result = float_row(model.onnx_path, dataset, comparison.imgsz)
            if "float" in recipes:
                comparison.rows.append(float_result)
                on_row(comparison)
        if name not in quantized:
            continue
        log(f"{name}: {'cached' if model.cached else f'{built[name][1]:.0f} s'}; scoring on {comparison.images} images")
        comparison.rows.append(quantized_row(name, model, dataset, built[name][1], float_result.map50_95))
        on_row(comparison)
    comparison.rows.sort(key=lambda row: recipes.index(row.recipe))
    comparison.complete = True
    on_row(comparison)
    return comparison
