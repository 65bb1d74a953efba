"""The fast aligned-bytes writer produces exactly the buffer esp-ppq's generated code produces."""

from __future__ import annotations

import numpy as np


def _build(create) -> bytes:
    import flatbuffers

    rng = np.random.default_rng(0)
    builder = flatbuffers.Builder(64)  # small: forces the buffer to grow while writing
    offsets = []
    for i in range(500):
        if i % 7 == 0:
            builder.PrependUint32(int(rng.integers(0, 2**32)))  # misalign between blocks
        if i % 11 == 0:
            builder.PrependUint8(int(rng.integers(0, 256)))
        offsets.append(create(builder, rng.integers(0, 256, 16, dtype=np.uint8).tobytes()))
    return bytes(builder.Bytes[builder.Head():]) + np.asarray(offsets).tobytes()


def test_identical_to_the_generated_writer() -> None:
    import esp_ppq.parser.espdl.helper as helper

    from host.model.fast_flatbuffers import _create_aligned_bytes

    assert _build(_create_aligned_bytes) == _build(helper.AlignedBytes.CreateAlignedBytes)


def test_patch_is_undone() -> None:
    import esp_ppq.parser.espdl.helper as helper

    from host.model.fast_flatbuffers import fast_aligned_bytes

    original = helper.AlignedBytes.CreateAlignedBytes
    with fast_aligned_bytes():
        assert helper.AlignedBytes.CreateAlignedBytes is not original
    assert helper.AlignedBytes.CreateAlignedBytes is original
