"""One call from an image and a quantized model to ESP-DL's detections, keeping every stage's output.

The stages are the device's: preprocess (int8 input tensor + letterbox geometry), the network
(PPQ simulation: int outputs + exponents by name), postprocess (candidates before NMS, final
boxes). Keeping all of them lets a comparison name the first stage where the device diverged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from host.errors import HarnessError
from host.chip.detection import DEFAULT_THRESHOLDS, Box, Thresholds
from host.chip.pipeline import DetectPipeline, Engine, PipelineResult, RawOutputs
from host.chip.postprocess import PostprocessResult
from host.chip.preprocess import Geometry, tensor_sha256
from host.chip.targets import check_target
from host.reference.simulate import FloatReference, OutputError, PPQSimulator, quantization_error


@functools.lru_cache(maxsize=4)
def _simulator(path: str, mtime_ns: int, size: int) -> PPQSimulator:
    return PPQSimulator(Path(path))


def simulator_for(graph_path: str | Path) -> PPQSimulator:
    """A PPQSimulator for a native graph file, loaded once per file version and reused."""
    p = Path(graph_path)
    if not p.is_file():
        raise HarnessError(
            f"quantized graph {p} does not exist: quantize the model with `python -m host quantize`, which "
            f"writes the esp_ppq native graph the reference runs"
        )
    st = p.stat()
    return _simulator(str(p.resolve()), st.st_mtime_ns, st.st_size)


@dataclass
class ReferenceResult:
    """Every stage of the host reference for one image, and what computed it."""

    target: str
    model_sha256: str | None
    engine: str  # the engine that computed the int outputs (provenance)
    stages: PipelineResult
    settings: dict[str, Any]
    float_outputs: dict[str, np.ndarray] | None = None
    errors: dict[str, OutputError] = field(default_factory=dict)

    @property
    def input_tensor(self) -> np.ndarray:
        return self.stages.input_tensor

    @property
    def input_exponent(self) -> int:
        return self.stages.input_exponent

    @property
    def geometry(self) -> Geometry:
        return self.stages.geometry

    @property
    def raw(self) -> RawOutputs:
        return self.stages.raw

    @property
    def post(self) -> PostprocessResult:
        return self.stages.post

    @property
    def boxes(self) -> list[Box]:
        return self.stages.boxes

    def to_json(self) -> dict:
        """JSON-ready summary: boxes in the device's order plus what identifies each stage."""
        out = {
            "boxes": [b.to_dict() for b in self.boxes],
            "target": self.target,
            "model_sha256": self.model_sha256,
            "engine": self.engine,
            "input": {
                "shape": list(self.input_tensor.shape),
                "exponent": self.input_exponent,
                "sha256": tensor_sha256(self.input_tensor),
            },
            "geometry": {"border": list(self.geometry.border),
                         "inv_scale": [self.geometry.inv_scale_x, self.geometry.inv_scale_y],
                         "source": [self.geometry.src_width, self.geometry.src_height]},
            "outputs": {
                name: {"shape": list(t.shape), "exponent": self.raw.exponents[name], "sha256": tensor_sha256(t)}
                for name, t in self.raw.tensors.items()
            },
            "thresholds": self.post.thresholds,
            "candidates": len(self.post.candidates),
            "settings": self.settings,
        }
        if self.errors:
            out["quantization_error"] = {n: e.to_dict() for n, e in self.errors.items()}
        return out


def _attr(model: Any, name: str) -> Any:
    return getattr(model, name, None) if model is not None else None


def engine_for(model: Any, target: str, graph_path: str | Path | None = None) -> Engine:
    """The reference's engine: the ESP-PPQ executor when the harness quantized the model (it has the
    graph), else the .espdl emulator on the file itself (a prequantized or QAT .espdl made elsewhere)."""
    graph_path = graph_path or _attr(model, "graph_path")
    if graph_path is not None:
        return simulator_for(graph_path)
    espdl_path = _attr(model, "espdl_path")
    if espdl_path is None:
        raise HarnessError("the model has neither an ESP-PPQ graph nor an .espdl file: pass a model from "
                           "host.model.quantize_model (a .pt/.onnx quantized by the harness, or an .espdl)")
    return _emulator_engine(str(Path(espdl_path).resolve()), target, espdl_version(model))


def espdl_version(model: Any) -> str:
    from host.chip.releases import FIRMWARE_ESPDL_VERSION

    return _attr(model, "espdl_version") or FIRMWARE_ESPDL_VERSION


@functools.lru_cache(maxsize=4)
def _emulator_engine(path: str, target: str, version: str) -> Engine:
    from host.espdl import load
    from host.espdl.engine import EmulatorEngine

    return EmulatorEngine(load(path), target, version)


def reference(
    image: np.ndarray | str | Path,
    model: Any = None,
    target: str | None = None,
    *,
    graph_path: str | Path | None = None,
    onnx_path: str | Path | None = None,
    score_thr: float = DEFAULT_THRESHOLDS.score_thr,
    nms_thr: float = DEFAULT_THRESHOLDS.nms_thr,
    top_k: int = DEFAULT_THRESHOLDS.top_k,
    float_model: str = "gcc-fastmath",
    with_float: bool = False,
    engine: Engine | None = None,
) -> ReferenceResult:
    """ESP-DL's detections for `image` under `model`, with every intermediate stage kept.

    `model` is a host.model.QuantizedModel or any object with `graph_path` (and optionally
    `onnx_path`, `sha256`, `target`, `input_exponent`, `imgsz`); explicit `graph_path`/`onnx_path`
    override it. `with_float` also runs the float ONNX on the same (dequantized) input and reports
    the per-output quantization error.
    """
    target = target or _attr(model, "target")
    if not target:
        raise HarnessError("no target given: pass target='esp32p4' (or the model's target) to the reference")
    check_target(target)
    model_target = _attr(model, "target")
    if model_target and model_target != target:
        raise HarnessError(
            f"the model was quantized for {model_target} but the reference was asked for {target}: "
            f"quantize the model for {target} (rounding differs per chip)"
        )
    engine = engine if engine is not None else engine_for(model, target, graph_path)
    spec = engine.input
    declared = _attr(model, "input_exponent")
    if declared is not None and int(declared) != spec.exponent:
        raise HarnessError(
            f"the model declares input exponent {declared} but its {engine.name} quantizes the input with "
            f"{spec.exponent}: the cache entry is inconsistent; clear it and quantize again"
        )
    imgsz = (spec.height, spec.width)
    declared_size = _attr(model, "imgsz")
    if declared_size is not None and (int(declared_size), int(declared_size)) != imgsz:
        raise HarnessError(f"the model declares imgsz {declared_size} but its graph input is {imgsz}; re-quantize it")
    stages = DetectPipeline(engine, target, float_model).detect(image, Thresholds(score_thr, nms_thr, top_k))
    result = ReferenceResult(
        target=target,
        model_sha256=_attr(model, "sha256"),
        engine=engine.name,
        stages=stages,
        settings={"score_thr": score_thr, "nms_thr": nms_thr, "top_k": top_k, "float_model": float_model,
                  "imgsz": list(imgsz)},
    )
    if with_float:
        onnx_path = onnx_path or _attr(model, "onnx_path")
        if onnx_path is None or not isinstance(engine, PPQSimulator):
            raise HarnessError("with_float needs the float split-head ONNX and the ESP-PPQ graph: pass a model "
                               "the harness quantized")
        result.float_outputs = FloatReference(onnx_path).run(engine.input_float(stages.input_tensor))
        result.errors = quantization_error(stages.raw, result.float_outputs)
    return result
