"""ESP-DL preprocess: letterbox geometry, nearest-neighbour sampling, quantization table, inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.errors import HarnessError
from host.chip.preprocess import letterbox_geometry, load_image, preprocess, quant_table, tensor_sha256


@pytest.mark.parametrize(
    ("src", "dst", "border", "inv"),
    [
        ((405, 540), 640, (0, 0, 80, 80), (0.84375, 0.84375)),  # portrait: pad left/right
        ((640, 427), 640, (106, 107, 0, 0), (1.0, 1.0)),  # landscape, odd pad: extra row at the bottom
        ((640, 431), 640, (104, 105, 0, 0), (1.0, 1.0)),
        ((300, 500), 320, (0, 0, 64, 64), (1.5625, 1.5625)),
        ((500, 500), 320, (0, 0, 0, 0), (1.5625, 1.5625)),  # square: equal scales take the width branch
        ((1, 1), 64, (0, 0, 0, 0), (0.015625, 0.015625)),
        ((4000, 3000), 640, (80, 80, 0, 0), (6.25, 6.25)),
        # float32 320/133 = 2.4060149, times 133 = 319.99997, truncated to 319: a 1-pixel right border
        ((133, 133), 320, (0, 0, 0, 1), (np.float32(133) / np.float32(319), 0.415625)),
    ],
)
def test_letterbox_geometry_by_hand(src, dst, border, inv):
    g = letterbox_geometry(src[0], src[1], dst, dst)
    assert g.border == border
    assert (g.inv_scale_x, g.inv_scale_y) == (float(np.float32(inv[0])), float(np.float32(inv[1])))
    assert g.inner_width == dst - border[2] - border[3] and g.inner_height == dst - border[0] - border[1]


def test_extreme_aspect_ratio_is_rejected_like_the_device():
    with pytest.raises(HarnessError, match="aspect ratio"):
        letterbox_geometry(1, 1000, 640, 640)  # the inner width truncates to 0


def test_quant_table_values_and_pad():
    t = quant_table(-6, "esp32p4")
    assert t.shape == (3, 256) and t.dtype == np.int8
    assert t[0, 114] == 29 and t[0, 0] == 0 and t[0, 255] == 64  # round(114 * 64 / 255) = round(28.61)
    assert quant_table(-7, "esp32p4")[1, 255] == 127  # 128 saturates
    assert (quant_table(-6, "esp32p4") == quant_table(-6, "esp32s3")).all()  # no ties at the usual exponents


def test_int16_input_for_a_model_whose_first_layer_is_int16():
    """NormQuant<int16_t>: the same formula saturated to int16 (the `mixed` preset makes model.0 int16)."""
    t = quant_table(-13, "esp32p4", bits=16)
    assert t.dtype == np.int16
    assert t[0, 255] == 8192 and t[0, 114] == 3662 and t[0, 0] == 0  # round(114 * 8192 / 255) = round(3662.3)
    assert quant_table(-15, "esp32p4", bits=16)[0, 255] == 32767  # 32768 saturates
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    t8, g8 = preprocess(img, 64, -6, "esp32p4")
    t16, g16 = preprocess(img, 64, -14, "esp32p4", bits=16)
    assert t16.dtype == np.int16 and g16 == g8
    # 2**8 times finer: the int16 value rounds to the int8 one (ties aside) after dividing by 256
    assert np.abs(t16.astype(np.int64) / 256.0 - t8).max() <= 0.5 + 1 / 256
    with pytest.raises(HarnessError, match="int8 or int16"):
        quant_table(-7, "esp32p4", bits=12)


def test_quant_table_ties_follow_the_target():
    # exponent 1: 255 * (1.f/255) = 1.0f exactly, times 0.5 = 0.5, a tie.
    assert quant_table(1, "esp32p4")[0, 255] == 0  # half to even
    assert quant_table(1, "esp32s3")[0, 255] == 1  # half up
    assert quant_table(1, "esp32s31")[0, 255] == 0


def _oracle(img: np.ndarray, dst: int, exponent: int, target: str) -> np.ndarray:
    """Pixel-by-pixel transcription of ImageTransformer's resize for small images."""
    f = np.float32
    g = letterbox_geometry(img.shape[1], img.shape[0], dst, dst)
    table = quant_table(exponent, target)
    out = np.empty((dst, dst, 3), dtype=np.int8)
    for y in range(dst):
        for x in range(dst):
            iy, ix = y - g.border_top, x - g.border_left
            if 0 <= iy < g.inner_height and 0 <= ix < g.inner_width:
                sy = min(int(f(iy) * f(g.inv_scale_y)), img.shape[0] - 1)
                sx = min(int(f(ix) * f(g.inv_scale_x)), img.shape[1] - 1)
                out[y, x] = [table[c, img[sy, sx, c]] for c in range(3)]
            else:
                out[y, x] = table[:, 114]
    return out[None]


@pytest.mark.parametrize("shape", [(23, 37), (37, 23), (64, 64), (5, 90), (133, 133), (1, 1), (64, 40)])
def test_preprocess_matches_the_pixel_loop(shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    dst = 64 if shape != (133, 133) else 96
    got, geom = preprocess(img, dst, -7, "esp32p4")
    assert got.shape == (1, dst, dst, 3) and got.dtype == np.int8
    np.testing.assert_array_equal(got, _oracle(img, dst, -7, "esp32p4"))


def test_border_is_the_quantized_pad_value():
    img = np.full((427, 640, 3), 255, dtype=np.uint8)
    t, g = preprocess(img, 640, -6, "esp32p4")
    assert (t[0, :106] == 29).all() and (t[0, 640 - 107 :] == 29).all()
    assert (t[0, 106 : 640 - 107] == 64).all()


@settings(max_examples=40, deadline=None)
@given(w=st.integers(1, 3000), h=st.integers(1, 3000), dst=st.sampled_from([32, 64, 320, 640]))
def test_geometry_properties(w, h, dst):
    try:
        g = letterbox_geometry(w, h, dst, dst)
    except HarnessError:
        assert max(w, h) > dst * min(w, h)  # only extreme aspect ratios are refused
        return
    assert min(g.border) >= 0
    assert g.border_bottom - g.border_top in (0, 1) and g.border_right - g.border_left in (0, 1)
    assert g.border_top + g.border_bottom == 0 or g.border_left + g.border_right == 0
    # The last inner pixel samples inside the source image.
    assert int(np.float32(g.inner_width - 1) * np.float32(g.inv_scale_x)) <= w
    assert int(np.float32(g.inner_height - 1) * np.float32(g.inv_scale_y)) <= h


def test_files_png_jpeg_gray_rgba(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(30, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), rgb)
    rgba = np.dstack([rgb, np.full((30, 50), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "b.png")
    np.testing.assert_array_equal(load_image(tmp_path / "b.png"), rgb)  # alpha dropped, not blended
    Image.fromarray(rgb[:, :, 0], "L").save(tmp_path / "g.png")
    assert (load_image(tmp_path / "g.png") == rgb[:, :, :1]).all()
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=90)
    t_file, _ = preprocess(tmp_path / "c.jpg", 64, -7, "esp32p4")
    t_arr, _ = preprocess(load_image(tmp_path / "c.jpg"), 64, -7, "esp32p4")
    assert tensor_sha256(t_file) == tensor_sha256(t_arr)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((10, 10, 4), np.uint8), "RGB"),
        (np.zeros((10, 10, 2), np.uint8), "RGB"),
        (np.zeros((10, 10), np.uint8), "RGB"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_arrays(image, message):
    with pytest.raises(HarnessError, match=message):
        preprocess(image, 64, -7, "esp32p4")


def test_bad_files_and_settings(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(HarnessError, match="cannot decode"):
        preprocess(tmp_path / "x.jpg", 64, -7, "esp32p4")
    with pytest.raises(HarnessError, match="does not exist"):
        preprocess(tmp_path / "missing.png", 64, -7, "esp32p4")
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(HarnessError, match="unknown target"):
        preprocess(img, 64, -7, "esp32")
    with pytest.raises(HarnessError, match="exponent"):
        preprocess(img, 64, 99, "esp32p4")
