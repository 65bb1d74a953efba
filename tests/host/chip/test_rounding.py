"""Per-chip rounding: half to even on ESP32-P4/S31, floorf(v + 0.5) on ESP32-S3, and its float quirk."""

from __future__ import annotations

import numpy as np
import pytest

from host.errors import HarnessError
from host.chip.rounding import inv_scale_of, quantize_float32, round_float32, scale_of


def test_ties():
    ties = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], dtype=np.float32)
    assert round_float32(ties, "esp32p4").tolist() == [-2, -2, 0, 0, 2, 2]
    assert round_float32(ties, "esp32s31").tolist() == [-2, -2, 0, 0, 2, 2]
    assert round_float32(ties, "esp32s3").tolist() == [-2, -1, 0, 1, 2, 3]  # toward +infinity


def test_half_up_rounds_the_sum_to_float_first():
    below_half = np.nextafter(np.float32(0.5), np.float32(0))  # 0.49999997
    assert round_float32(below_half, "esp32p4") == 0
    assert round_float32(below_half, "esp32s3") == 1  # (float)(0.49999997 + 0.5) == 1.0f


def test_quantize_saturates_and_scales():
    assert scale_of(-6) == np.float32(1 / 64) and inv_scale_of(-6) == 64 and scale_of(2) == 4
    assert quantize_float32(np.float32(3.0), inv_scale_of(-6), "esp32p4").tolist() == 127
    assert quantize_float32(np.float32(-3.0), inv_scale_of(-6), "esp32p4").tolist() == -128
    assert quantize_float32(np.float32(-3.0), inv_scale_of(-6), "esp32p4", bits=16).tolist() == -192


def test_unknown_target():
    with pytest.raises(HarnessError, match="esp32p4"):
        round_float32(1.0, "esp32c3")
