"""Verdicts: does the device agree with the host reference, and if not, which stage diverged first.

Boxes are compared exactly by default (the stack is bit-exact by design: same pixels, same int8
tensors, same float32 arithmetic). Tolerances (IoU, score, boxes allowed to go unmatched near the
score threshold) exist for setups where exactness is impossible, such as device-side JPEG decoding.
When boxes differ, the device's tensors are compared with the reference's: a different int8 input
blames the preprocess, equal inputs but different outputs blame the model (kernels or export),
equal outputs but different boxes blame the postprocess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from host.chip.detection import OUTPUT_NAMES, Box



@dataclass(frozen=True)
class Tolerance:
    iou: float | None = None  # None: exact boxes; else the IoU a matched pair must reach
    score: float = 0.0  # allowed absolute score difference of a matched pair
    unmatched_near_threshold: int = 0  # boxes allowed unmatched if their score is within `score` of the threshold

    @property
    def exact(self) -> bool:
        return self.iou is None and self.score == 0.0 and self.unmatched_near_threshold == 0

    def describe(self) -> str:
        return "exact" if self.exact else f"iou>={self.iou} score±{self.score} unmatched<={self.unmatched_near_threshold}"


@dataclass(frozen=True)
class BoxComparison:
    equal: bool
    problems: tuple[str, ...]

    def summary(self) -> str:
        return "boxes equal" if self.equal else "; ".join(self.problems)


def _as_tuple(box: Box) -> tuple[int, float, tuple[int, int, int, int]]:
    return int(box.category), float(box.score), box.box


def iou(a: Sequence[int], b: Sequence[int]) -> float:
    """IoU with ESP-DL's +1 pixel area convention."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = ix * iy
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def compare_boxes(device: Sequence[Box], reference: Sequence[Box], tol: Tolerance = Tolerance(),
                  score_floor: float = 0.0) -> BoxComparison:
    """Compare device boxes with reference boxes, in order when exact, by greedy IoU matching otherwise."""
    dev = [_as_tuple(b) for b in device]
    ref = [_as_tuple(b) for b in reference]
    problems: list[str] = []
    if tol.exact:
        if len(dev) != len(ref):
            problems.append(f"device reported {len(dev)} boxes, reference {len(ref)}")
        for i, (d, r) in enumerate(zip(dev, ref)):
            if d != r:
                problems.append(f"box {i}: device {_fmt(d)} != reference {_fmt(r)}")
        return BoxComparison(not problems, tuple(problems))
    unmatched_dev = list(range(len(dev)))
    unmatched_ref = []
    for j, r in enumerate(ref):
        best, best_iou = None, -1.0
        for i in unmatched_dev:
            if dev[i][0] == r[0]:
                value = iou(dev[i][2], r[2])
                if value > best_iou:
                    best, best_iou = i, value
        if best is not None and best_iou >= (tol.iou or 1.0) and abs(dev[best][1] - r[1]) <= tol.score:
            unmatched_dev.remove(best)
        else:
            unmatched_ref.append(j)
    near = lambda s: s - score_floor <= tol.score  # noqa: E731
    leftovers = [("device", dev[i]) for i in unmatched_dev] + [("reference", ref[j]) for j in unmatched_ref]
    excused = [x for x in leftovers if near(x[1][1])][: tol.unmatched_near_threshold]
    for side, box in leftovers:
        if (side, box) not in excused:
            problems.append(f"{side} box {_fmt(box)} has no match")
    return BoxComparison(not problems, tuple(problems))


def _fmt(box: tuple[int, float, tuple[int, int, int, int]]) -> str:
    return f"cat {box[0]} score {box[1]:.6f} [{', '.join(map(str, box[2]))}]"


@dataclass(frozen=True)
class TensorDiff:
    name: str
    equal: bool
    detail: str


@dataclass(frozen=True)
class StageVerdict:
    """Which stage diverged first: 'none', 'input', 'outputs' or 'postprocess', with the evidence."""

    stage: str
    message: str
    tensors: tuple[TensorDiff, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        return {"stage": self.stage, "message": self.message,
                "tensors": [{"name": t.name, "equal": t.equal, "detail": t.detail} for t in self.tensors]}


def tensor_diff(name: str, device: np.ndarray, device_exp: int, reference: np.ndarray, reference_exp: int) -> TensorDiff:
    if device_exp != reference_exp:
        return TensorDiff(name, False, f"exponent {device_exp} on the device, {reference_exp} on the host")
    if device.shape != reference.shape:
        return TensorDiff(name, False, f"shape {device.shape} on the device, {reference.shape} on the host")
    diff = device.astype(np.int64) - reference.astype(np.int64)
    bad = np.argwhere(diff != 0)
    if len(bad) == 0:
        return TensorDiff(name, True, "identical")
    first = tuple(int(v) for v in bad[0])
    return TensorDiff(name, False, f"{len(bad)} of {diff.size} elements differ (max |diff| {int(np.abs(diff).max())}); "
                                   f"first at NHWC index {first}: device {int(device[first])}, host {int(reference[first])}")


def diagnose(dump: Mapping[str, tuple[np.ndarray, int]], ref_input: np.ndarray, ref_input_exp: int,
             ref_outputs: Mapping[str, np.ndarray], ref_output_exps: Mapping[str, int],
             boxes: BoxComparison, input_name: str = "images") -> StageVerdict:
    """Name the first stage where the device's tensors leave the reference's."""
    if input_name not in dump:
        return StageVerdict("unknown", f"the device's dump has no input tensor {input_name!r}; cannot place the divergence")
    first = tensor_diff(input_name, *dump[input_name], ref_input, ref_input_exp)
    if not first.equal:
        return StageVerdict("input", f"preprocess diverged: int8 input {first.detail}", (first,))
    outs = tuple(tensor_diff(n, *dump[n], ref_outputs[n], ref_output_exps[n]) for n in OUTPUT_NAMES if n in dump)
    bad = [t for t in outs if not t.equal]
    if bad:
        return StageVerdict("outputs", "model diverged (kernel or export): inputs equal, outputs differ: "
                            + "; ".join(f"{t.name}: {t.detail}" for t in bad), (first, *outs))
    if not boxes.equal:
        return StageVerdict("postprocess", "postprocess diverged: int8 inputs and outputs equal, boxes differ: "
                            + boxes.summary(), (first, *outs))
    return StageVerdict("none", "device and reference agree at every stage", (first, *outs))
