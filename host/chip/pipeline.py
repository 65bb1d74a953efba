"""ESP-DL's detection pipeline written once: preprocess -> engine -> postprocess, every stage kept.

esp-dl's `DetectImpl` composes a model, an image preprocessor and a postprocessor; here the model is
the part that varies. An `Engine` takes the integer NHWC input tensor and returns the six integer
head outputs with their exponents: the ESP-PPQ executor (host.reference), the .espdl emulator
(host.espdl) or esp-dl's own C++. The host reference, the simulated DUT and `espdl run` all go
through `DetectPipeline`, so they differ only in the engine. Keeping every stage's output lets a
comparison name the first stage where a device diverged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Protocol

import numpy as np

from host.chip.detection import DEFAULT_THRESHOLDS, OUTPUT_NAMES, Box, Thresholds
from host.chip.postprocess import PostprocessResult, postprocess
from host.chip.preprocess import Geometry, preprocess
from host.chip.targets import check_target
from host.errors import HarnessError


@dataclass(frozen=True)
class InputSpec:
    """The model input as the preprocess must build it: name, size, exponent and integer width."""

    name: str
    width: int
    height: int
    exponent: int
    bits: int  # 8 or 16 (esp-dl's NormQuant<int8_t> / <int16_t>)


@dataclass(frozen=True)
class RawOutputs:
    """Integer NHWC outputs and their exponents, addressed by output name."""

    tensors: dict[str, np.ndarray]
    exponents: dict[str, int]

    def dequantized(self) -> dict[str, np.ndarray]:
        """float32 NHWC values q * 2**exp."""
        return {n: t.astype(np.float32) * np.float32(2.0 ** self.exponents[n]) for n, t in self.tensors.items()}


class Engine(Protocol):
    """The network stage: an integer NHWC input tensor in, the six integer head outputs out."""

    name: str  # what computed the outputs, for provenance and reports

    @property
    def input(self) -> InputSpec: ...

    def run(self, tensor: np.ndarray) -> RawOutputs: ...


@dataclass(frozen=True)
class Taps:
    """Optional rewrites between stages: how the simulated DUT injects a preprocess, kernel or
    postprocess fault without a second copy of the pipeline."""

    input: Callable[[np.ndarray], np.ndarray] | None = None
    outputs: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None
    boxes: Callable[[list[Box]], list[Box]] | None = None


NO_TAPS = Taps()


@dataclass
class PipelineResult:
    """Every stage of one image through the pipeline."""

    input_tensor: np.ndarray  # integer NHWC [1, H, W, 3]
    input_exponent: int
    geometry: Geometry
    raw: RawOutputs
    post: PostprocessResult
    boxes: list[Box] = field(default_factory=list)


class Preprocessor(Protocol):
    """`host.chip.preprocess.preprocess`'s signature: image -> (integer NHWC tensor, letterbox geometry)."""

    def __call__(self, image: np.ndarray | str | Path, imgsz: tuple[int, int], exponent: int, target: str,  # (h, w)
                 bits: int = 8) -> tuple[np.ndarray, Geometry]: ...


class Postprocessor(Protocol):
    """`host.chip.postprocess.postprocess`'s signature: head outputs -> PostprocessResult."""

    def __call__(self, outputs: Mapping[str, np.ndarray], exponents: Mapping[str, int], geometry: Geometry,
                 target: str, score_thr: float, nms_thr: float, top_k: int,
                 float_model: str = "gcc-fastmath") -> PostprocessResult: ...


class DetectPipeline:
    """One engine plus ESP-DL-exact preprocess and postprocess for one chip.

    The preprocess and postprocess are the host's own (host.chip) unless others of the same signature are
    given - esp-dl's C++ built for the host, so a simulated DUT can run code independent of the reference's.
    """

    def __init__(self, engine: Engine, target: str, float_model: str = "gcc-fastmath",
                 preprocessor: Preprocessor = preprocess, postprocessor: Postprocessor = postprocess) -> None:
        self.engine = engine
        self.target = check_target(target)
        self.float_model = float_model
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor

    @property
    def input(self) -> InputSpec:
        return self.engine.input

    def preprocess(self, image: np.ndarray | str | Path) -> tuple[np.ndarray, Geometry]:
        spec = self.engine.input
        return self.preprocessor(image, (spec.height, spec.width), spec.exponent, self.target, bits=spec.bits)

    def detect(self, image: np.ndarray | str | Path, thresholds: Thresholds = DEFAULT_THRESHOLDS,
               taps: Taps = NO_TAPS) -> PipelineResult:
        """The device's stages for one RGB888 image (array or file)."""
        tensor, geometry = self.preprocess(image)
        if taps.input is not None:
            tensor = taps.input(tensor)
        raw = self.engine.run(tensor)
        _check_outputs(raw, self.engine.name)
        if taps.outputs is not None:
            raw = RawOutputs(taps.outputs({n: np.array(t) for n, t in raw.tensors.items()}), dict(raw.exponents))
        post = self.postprocessor(raw.tensors, raw.exponents, geometry, self.target, thresholds.score_thr,
                                  thresholds.nms_thr, thresholds.top_k, self.float_model)
        boxes = list(post.boxes)
        if taps.boxes is not None:
            boxes = taps.boxes(boxes)
        return PipelineResult(tensor, self.engine.input.exponent, geometry, raw, post, boxes)


def _check_outputs(raw: RawOutputs, engine: str) -> None:
    missing = [n for n in OUTPUT_NAMES if n not in raw.tensors]
    if missing:
        raise HarnessError(f"the {engine} produced no {', '.join(missing)}: the model is not a split-head "
                           f"YOLO11 detector (its outputs must be {', '.join(OUTPUT_NAMES)})")


def raw_outputs(tensors: Mapping[str, np.ndarray], exponents: Mapping[str, int]) -> RawOutputs:
    """The six head outputs out of a larger set of named tensors (an engine that returns more)."""
    return RawOutputs({n: np.asarray(tensors[n]) for n in OUTPUT_NAMES if n in tensors},
                      {n: int(exponents[n]) for n in OUTPUT_NAMES if n in exponents})
