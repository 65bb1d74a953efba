"""esp-dl's own C++ ImagePreprocessor and yolo11PostProcessor, with host.chip's signatures (ctypes).

`preprocess` and `postprocess` take and return what host.chip.preprocess.preprocess and
host.chip.postprocess.postprocess take and return, so a DetectPipeline can run either (host.chip.pipeline's
Preprocessor/Postprocessor protocols). The arithmetic is esp-dl's, compiled for the host by host.espdl_cpp.builder
with the chip's rounding rule, expf/logf and float contraction. Harness-level checks (the image array or file,
the target name, the output names and shapes) stay the harness's own and raise the same HarnessErrors.

What esp-dl does not expose is left unknown in the result: a candidate's stage, cell, integer logit and DFL
distances are not part of esp-dl's `result_t`, so `Candidates.stage/y/x/score_q` are -1 and `dfl` is NaN.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from host.chip.detection import DEFAULT_THRESHOLDS, OUTPUT_NAMES, Box
from host.chip.postprocess import REG_MAX, YOLO11_STAGES, Candidates, PostprocessResult
from host.chip.preprocess import YOLO11_MEAN, YOLO11_PAD, YOLO11_STD, Geometry, as_rgb888, load_image
from host.chip.targets import check_target
from host.errors import HarnessError
from host.espdl_cpp.builder import Built, build, variant_of

IMPLEMENTATION = "esp-dl C++ (host build)"
FLOAT_MODEL = "gcc-fastmath"  # the only float model a compiled build has: its compiler's
#: esp-dl inserts every candidate into a score-sorted std::list (parse_stage: std::upper_bound walks the list),
#: so the postprocess is quadratic in the candidates (worse with cache misses): measured on the host build
#: 0.2 s for 6600, 2 s for 10400, 4 minutes for 41600 (the chip is slower still). Above this count `postprocess`
#: refuses (TooManyCandidates) instead of hanging.
MAX_CANDIDATES = 10_000


class TooManyCandidates(HarnessError):
    """More cells pass the score threshold than esp-dl's quadratic candidate list handles in reasonable time."""


_lock = threading.Lock()
_built: Built | None = None
_libs: dict[str, ctypes.CDLL] = {}

def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    vp, i, f = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
    sig = {
        "hil_last_error": (ctypes.c_char_p, []),
        "hil_round_half_even_enabled": (i, []),
        "hil_round_array": (None, [i, vp, i, f, vp]),
        "hil_float_array": (None, [i, vp, i, vp]),
        "hil_dfl_integral": (None, [vp, i, vp]),
        "hil_score_threshold": (i, [f, i, i]),
        "hil_preprocess": (i, [vp, i, i, i, i, i, i, vp, vp, vp, vp, vp, vp]),
        "hil_postprocess": (vp, [i, vp, vp, vp, vp, i, i, vp, vp, f, f, i]),
        "hil_post_counts": (None, [vp, vp, vp]),
        "hil_post_read": (None, [vp, vp, vp, vp, vp, vp, vp, vp]),
        "hil_post_free": (None, [vp]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def built() -> Built:
    """The cached build (built on first use); EspdlCppUnavailable when it cannot be built here."""
    global _built
    with _lock:
        if _built is None:
            _built = build()
        return _built


def library(target: str) -> ctypes.CDLL:
    """The loaded library for `target`'s arithmetic (P4 or S3 build)."""
    variant = variant_of(check_target(target))
    b = built()
    with _lock:
        if variant not in _libs:
            _libs[variant] = _declare(ctypes.CDLL(str(b.library(variant)), mode=ctypes.RTLD_LOCAL))
            _check_float_environment()
        return _libs[variant]


def _check_float_environment() -> None:
    """Loading the library must not switch the process to flush-to-zero (a -ffast-math link would)."""
    tiny = np.array([1e-45], dtype=np.float32)
    if not (tiny * np.float32(1.0))[0] > 0:
        raise HarnessError("loading esp-dl's host build switched the process to flush-to-zero arithmetic; "
                           "it must not be linked with -ffast-math")


def _error(lib: ctypes.CDLL) -> str:
    return (lib.hil_last_error() or b"").decode(errors="replace")


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _dst_size(imgsz: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(imgsz, (int, np.integer)):
        h = w = int(imgsz)
    else:
        h, w = (int(v) for v in imgsz)
    if h <= 0 or w <= 0 or h > 65535 or w > 65535:
        raise HarnessError(f"model input size {h}x{w} is not usable: pass --imgsz as a positive size such as 320 or 640")
    return w, h


def preprocess(
    image: np.ndarray | str | Path,
    imgsz: int | Sequence[int],
    input_exponent: int,
    target: str,
    pad_value: int = YOLO11_PAD,
    bits: int = 8,
) -> tuple[np.ndarray, Geometry]:
    """esp-dl's ImagePreprocessor (mean 0, std 255, letterbox pad `pad_value`) on an RGB888 image: the int8/int16
    NHWC [1, H, W, 3] model input and its letterbox Geometry."""
    check_target(target)
    rgb = load_image(image) if isinstance(image, (str, Path)) else as_rgb888(image)
    dst_w, dst_h = _dst_size(imgsz)
    if bits not in (8, 16):
        raise HarnessError(f"model input of {bits} bits: ESP-DL's image preprocessor builds int8 or int16 inputs only")
    if not -24 <= int(input_exponent) <= 24:
        raise HarnessError(f"input exponent {input_exponent} is outside any int{bits} image quantization: read the "
                           f"exponent from the model (QuantizedModel.input_exponent), not by hand")
    lib = library(target)
    src_h, src_w = rgb.shape[:2]
    out = np.empty((1, dst_h, dst_w, 3), dtype=np.int8 if bits == 8 else np.int16)
    border = np.zeros(4, dtype=np.int32)
    inv = np.zeros(2, dtype=np.float32)
    mean = np.asarray(YOLO11_MEAN, dtype=np.float32)
    std = np.asarray(YOLO11_STD, dtype=np.float32)
    pad = np.full(3, pad_value, dtype=np.uint8)
    if lib.hil_preprocess(_ptr(rgb), src_w, src_h, dst_w, dst_h, int(input_exponent), bits, _ptr(mean), _ptr(std),
                          _ptr(pad), _ptr(out), _ptr(border), _ptr(inv)) != 0:
        raise HarnessError(f"esp-dl's ImagePreprocessor rejected a {src_w}x{src_h} image for a {dst_w}x{dst_h} input "
                           f"(on the device ESP_ERROR_CHECK aborts): {_error(lib)}; crop the image to a less extreme "
                           f"aspect ratio")
    top, bottom, left, right = (int(v) for v in border)
    geometry = Geometry(src_width=src_w, src_height=src_h, dst_width=dst_w, dst_height=dst_h, border_top=top,
                        border_bottom=bottom, border_left=left, border_right=right, inv_scale_x=float(inv[0]),
                        inv_scale_y=float(inv[1]))
    return out, geometry


def _outputs(outputs: Mapping[str, np.ndarray], exponents: Mapping[str, int]) -> tuple[list[np.ndarray], int]:
    missing = [n for n in OUTPUT_NAMES if n not in outputs or n not in exponents]
    if missing:
        raise HarnessError(
            f"model outputs lack {', '.join(missing)} (have {', '.join(sorted(outputs)) or 'none'}): ESP-DL's "
            f"yolo11 postprocess needs box0/score0/box1/score1/box2/score2; export the model with the split "
            f"detection head (host.model export)")
    arrays = []
    for i in range(3):
        b, s = np.asarray(outputs[f"box{i}"]), np.asarray(outputs[f"score{i}"])
        if b.ndim != 4 or s.ndim != 4 or b.shape[0] != 1 or b.shape[3] != 4 * REG_MAX or b.shape[:3] != s.shape[:3]:
            raise HarnessError(
                f"outputs box{i} {b.shape} / score{i} {s.shape} are not NHWC [1,h,w,64] / [1,h,w,classes]: "
                f"pass the int8 NHWC tensors from the simulator or the device dump")
        arrays += [b, s]
    for name, a in zip(OUTPUT_NAMES, arrays):
        if a.dtype not in (np.int8, np.int16):
            raise HarnessError(f"output {name} has dtype {a.dtype}: pass the integer (int8/int16) tensor")
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1:
        raise HarnessError("head outputs mix int8 and int16: esp-dl's yolo11PostProcessor reads all six with box0's "
                           "element type (dl_detect_yolo11_postprocessor.cpp postprocess()), so it cannot run them")
    return [np.ascontiguousarray(a) for a in arrays], 8 * arrays[0].dtype.itemsize


def postprocess(
    outputs: Mapping[str, np.ndarray],
    exponents: Mapping[str, int],
    geometry: Geometry,
    target: str,
    score_thr: float = DEFAULT_THRESHOLDS.score_thr,
    nms_thr: float = DEFAULT_THRESHOLDS.nms_thr,
    top_k: int = DEFAULT_THRESHOLDS.top_k,
    float_model: str = FLOAT_MODEL,
    stages: tuple[tuple[int, int], ...] = YOLO11_STAGES,
) -> PostprocessResult:
    """esp-dl's yolo11PostProcessor (postprocess() then get_result(width, height)) on int NHWC outputs by name."""
    check_target(target)
    if float_model != FLOAT_MODEL:
        raise HarnessError(f"float model {float_model!r}: esp-dl's C++ built for the host has one float model, the "
                           f"compiler's ({FLOAT_MODEL!r}); use host.chip.postprocess for {float_model!r}")
    if not 0.0 < score_thr < 1.0:
        raise HarnessError(f"score threshold {score_thr} is not a probability: pass a value in (0, 1), e.g. 0.25")
    arrays, bits = _outputs(outputs, exponents)
    lib = library(target)
    thresholds_q = [lib.hil_score_threshold(float(score_thr), int(exponents[f"score{i}"]), bits) for i in range(3)]
    count = sum(int(np.count_nonzero(arrays[2 * i + 1] > thresholds_q[i])) for i in range(3))
    if count > MAX_CANDIDATES:
        raise TooManyCandidates(
            f"{count} cells pass the score threshold {score_thr}: esp-dl's yolo11PostProcessor inserts each into a "
            f"sorted std::list (quadratic; minutes on the device as well), so the C++ postprocess refuses above "
            f"{MAX_CANDIDATES}; raise --score-thr or use host.chip.postprocess (an untrained model passes most cells)")
    ptrs = (ctypes.c_void_p * 6)(*(a.ctypes.data for a in arrays))
    dims = np.array([d for i in range(3) for d in arrays[2 * i + 1].shape[1:]], dtype=np.int32)
    exps = np.array([int(exponents[n]) for n in OUTPUT_NAMES], dtype=np.int32)
    if (np.abs(exps) > 24).any():
        raise HarnessError(f"output exponents {exps.tolist()} are out of range: the model's exponents are corrupt")
    stage_table = np.array([v for stride, offset in stages for v in (stride, stride, offset, offset)], dtype=np.int32)
    border = np.array(geometry.border, dtype=np.int32)
    inv = np.array([geometry.inv_scale_x, geometry.inv_scale_y], dtype=np.float32)
    handle = lib.hil_postprocess(bits, ptrs, _ptr(dims), _ptr(exps), _ptr(stage_table), geometry.src_width,
                                 geometry.src_height, _ptr(border), _ptr(inv), float(score_thr), float(nms_thr),
                                 int(top_k))
    if not handle:
        raise HarnessError(f"esp-dl's yolo11PostProcessor failed: {_error(lib)}")
    try:
        counts = np.zeros(3, dtype=np.int32)
        thresholds = np.zeros(3, dtype=np.int32)
        lib.hil_post_counts(handle, _ptr(counts), _ptr(thresholds))
        n_cand, n_kept, n_box = (int(c) for c in counts)
        cand_cat = np.zeros(n_cand, dtype=np.int32)
        cand_score = np.zeros(n_cand, dtype=np.float32)
        cand_box = np.zeros((n_cand, 4), dtype=np.int32)
        kept = np.zeros(n_kept, dtype=np.int32)
        box_cat = np.zeros(n_box, dtype=np.int32)
        box_score = np.zeros(n_box, dtype=np.float32)
        box_box = np.zeros((n_box, 4), dtype=np.int32)
        lib.hil_post_read(handle, _ptr(cand_cat), _ptr(cand_score), _ptr(cand_box), _ptr(kept), _ptr(box_cat),
                          _ptr(box_score), _ptr(box_box))
    finally:
        lib.hil_post_free(handle)
    unknown = np.full(n_cand, -1, dtype=np.int64)
    candidates = Candidates(stage=unknown, y=unknown.copy(), x=unknown.copy(), category=cand_cat.astype(np.int64),
                            score_q=unknown.copy(), score=cand_score, box=cand_box.astype(np.int64),
                            dfl=np.full((n_cand, 4), np.nan, dtype=np.float32))
    boxes = [Box(int(c), float(s), *(int(v) for v in b)) for c, s, b in zip(box_cat, box_score, box_box)]
    return PostprocessResult(thresholds={f"score{i}": int(thresholds[i]) for i in range(3)}, candidates=candidates,
                             kept=kept.astype(np.int64), boxes=boxes)


# ----------------------------------------------------------------------------------- esp-dl's functions, for tests
ROUND, ROUND_HALF_EVEN, QUANTIZE8, QUANTIZE16 = range(4)
SIGMOID, INVERSE_SIGMOID, EXPF, LOGF = range(4)


def int_probe(what: int, values: np.ndarray, target: str, arg: float = 1.0) -> np.ndarray:
    """esp-dl's float -> int functions of `target`'s build, element-wise (int64): ROUND (dl::tool::round<float>),
    ROUND_HALF_EVEN (dl::tool::round_half_even(float): the fcvt.w.s rne model in the P4 build, esp-dl's C code in
    the S3 build), QUANTIZE8/QUANTIZE16 (dl::quantize<int8_t/int16_t>(value, arg))."""
    x = np.ascontiguousarray(values, dtype=np.float32).ravel()
    out = np.zeros(x.size, dtype=np.int32)
    library(target).hil_round_array(what, _ptr(x), x.size, float(np.float32(arg)), _ptr(out))
    return out.astype(np.int64).reshape(np.shape(values))


def float_probe(what: int, values: np.ndarray, target: str = "esp32p4") -> np.ndarray:
    """esp-dl's float functions of the build, element-wise: SIGMOID, INVERSE_SIGMOID (dl::math), EXPF, LOGF (the
    chip's newlib routines the build links)."""
    x = np.ascontiguousarray(values, dtype=np.float32).ravel()
    out = np.zeros(x.size, dtype=np.float32)
    library(target).hil_float_array(what, _ptr(x), x.size, _ptr(out))
    return out.reshape(np.shape(values))


def dfl_integral(box_values: np.ndarray, target: str) -> np.ndarray:
    """dl::math::dfl_integral (softmax + expectation) on (n, 16) float32 values -> (n,) float32."""
    data = np.ascontiguousarray(box_values, dtype=np.float32).reshape(-1, REG_MAX).copy()
    out = np.zeros(data.shape[0], dtype=np.float32)
    library(target).hil_dfl_integral(_ptr(data), data.shape[0], _ptr(out))
    return out
