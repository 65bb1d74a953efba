"""host.chip.preprocess == esp-dl's own ImagePreprocessor (C++ built for the host), bit for bit, on both chips.

Each hypothesis example draws a regime (which sizes) and a seed, then checks a batch of random cases: source images
of 1..2000 pixels a side (random bytes), model inputs of 1..256 (and a few 320/640), input exponents -24..24
(mostly the realistic -10..1), int8 and int16 inputs, pad values. A case passes when both reject the image (the
letterbox leaves no pixels; the device aborts in ESP_ERROR_CHECK) or both give the same tensor and Geometry.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.chip.preprocess import preprocess as python_preprocess
from host.errors import HarnessError
from tests.host.espdl_cpp.conftest import TARGETS

CASES = 10_000  # per target
EXAMPLES = 50
BATCH = CASES // EXAMPLES
MAX_SIDE = 2000
POOL = np.random.default_rng(20260516).integers(0, 256, MAX_SIDE * MAX_SIDE * 3 + 4096, dtype=np.uint8)
REGIMES = ("any", "small-input", "extreme-aspect", "near-identity", "large-image")


def _image(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A random RGB888 image: a contiguous view into a fixed pool of random bytes at a random offset."""
    offset = int(rng.integers(0, 4096))
    return POOL[offset: offset + width * height * 3].reshape(height, width, 3)


def _log_uniform(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(np.clip(np.round(np.exp(rng.uniform(np.log(lo), np.log(hi + 1)))), lo, hi))


def draw_case(rng: np.random.Generator, regime: str) -> dict:
    if regime == "any":
        src = (_log_uniform(rng, 1, MAX_SIDE), _log_uniform(rng, 1, MAX_SIDE))
        low = 1 if rng.random() < 0.1 else 8
        dst = (_log_uniform(rng, low, 256), _log_uniform(rng, low, 256))
    elif regime == "small-input":
        src = (int(rng.integers(1, MAX_SIDE + 1)), int(rng.integers(1, MAX_SIDE + 1)))
        side = int(rng.choice([8, 16, 32, 48, 64, 96, 128]))
        dst = (side, side) if rng.random() < 0.7 else (side, int(rng.integers(1, 129)))
    elif regime == "extreme-aspect":
        thin, long = int(rng.integers(1, 6)), int(rng.integers(50, MAX_SIDE + 1))
        src = (thin, long) if rng.random() < 0.5 else (long, thin)
        dst = (_log_uniform(rng, 1, 256), _log_uniform(rng, 1, 256))
    elif regime == "near-identity":
        dst = (int(rng.integers(1, 200)), int(rng.integers(1, 200)))
        src = tuple(max(1, d + int(rng.integers(-3, 4))) for d in dst)
    else:  # large-image: big sources into a small input (large inverse scales)
        src = (int(rng.integers(1000, MAX_SIDE + 1)), int(rng.integers(1000, MAX_SIDE + 1)))
        dst = (_log_uniform(rng, 1, 64), _log_uniform(rng, 1, 64))
    exponent = int(rng.integers(-10, 2)) if rng.random() < 0.7 else int(rng.integers(-24, 25))
    return {"src": src, "dst": dst, "exponent": exponent, "bits": int(rng.choice([8, 16])),
            "pad": 114 if rng.random() < 0.3 else int(rng.integers(0, 256)), "seed_offset": int(rng.integers(0, 2**31))}


def run_case(impl, image: np.ndarray, case: dict, target: str):
    h, w = case["dst"][1], case["dst"][0]
    try:
        tensor, geometry = impl(image, (h, w), case["exponent"], target, pad_value=case["pad"], bits=case["bits"])
    except HarnessError:
        return "rejected"
    return tensor, geometry


def compare(espdl_cpp, case: dict, target: str) -> str | None:
    """None when host.chip and esp-dl agree on the case, else what differs."""
    image = _image(np.random.default_rng(case["seed_offset"]), *case["src"])
    ours = run_case(python_preprocess, image, case, target)
    theirs = run_case(espdl_cpp.preprocess, image, case, target)
    if isinstance(ours, str) or isinstance(theirs, str):
        return None if ours == theirs else f"host.chip: {ours if isinstance(ours, str) else 'ok'}, esp-dl: " \
                                          f"{theirs if isinstance(theirs, str) else 'ok'}"
    (t1, g1), (t2, g2) = ours, theirs
    if g1 != g2:
        return f"geometry {g1} != esp-dl {g2}"
    if t1.dtype != t2.dtype or t1.shape != t2.shape:
        return f"tensor {t1.dtype}{t1.shape} != esp-dl {t2.dtype}{t2.shape}"
    if not np.array_equal(t1, t2):
        where = np.argwhere(t1 != t2)
        return f"{len(where)} tensor values differ, first at {where[0].tolist()}: {t1[tuple(where[0])]} != " \
               f"{t2[tuple(where[0])]}"
    return None


@pytest.mark.parametrize("target", TARGETS)
def test_preprocess_equals_espdl(espdl_cpp, target, record_property) -> None:
    counts: Counter = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(regime=st.sampled_from(REGIMES), seed=st.integers(0, 2**63 - 1))
    def check(regime: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(BATCH):
            case = draw_case(rng, regime)
            problem = compare(espdl_cpp, case, target)
            counts["cases"] += 1
            assert problem is None, f"{target} {regime} case {case}: {problem}"

    check()
    record_property("cases", counts["cases"])
    assert counts["cases"] >= CASES


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("imgsz", [(320, 320), (640, 640), (384, 640)])
def test_preprocess_equals_espdl_at_model_sizes(espdl_cpp, target, imgsz) -> None:
    """Full-size model inputs (the per-case cost is higher, so fewer cases): the same equality."""
    rng = np.random.default_rng(sum(imgsz))
    for _ in range(8):
        case = {"src": (int(rng.integers(1, MAX_SIDE + 1)), int(rng.integers(1, MAX_SIDE + 1))),
                "dst": (imgsz[1], imgsz[0]), "exponent": int(rng.integers(-8, 0)), "bits": int(rng.choice([8, 16])),
                "pad": 114, "seed_offset": int(rng.integers(0, 2**31))}
        assert compare(espdl_cpp, case, target) is None, case


@pytest.mark.parametrize("target", TARGETS)
def test_quantization_ties_equal_espdl(espdl_cpp, target) -> None:
    """Exponent 1: pixel 255 lands exactly on 0.5 - 0 on ESP32-P4 (half to even), 1 on ESP32-S3 (half up)."""
    image = np.full((4, 4, 3), 255, dtype=np.uint8)
    ours, _ = python_preprocess(image, 4, 1, target)
    theirs, _ = espdl_cpp.preprocess(image, 4, 1, target)
    assert np.array_equal(ours, theirs)
    assert int(theirs.reshape(-1)[0]) == (0 if target == "esp32p4" else 1)
