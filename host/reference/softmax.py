"""ESP-DL's Softmax module, bit for bit, and a runtime hook that puts it into ESP-PPQ's executor.

Why: ESP-PPQ leaves Softmax outputs in float (state FP32) and computes them with torch's softmax;
its exporter then inserts a QuantizeLinear after the Softmax, and the chip runs ESP-DL's own
Softmax (`dl/module/include/dl_module_softmax.hpp`) before that QuantizeLinear. The two float
results differ in the last bits, and near a rounding boundary the int8 value after the
QuantizeLinear differs by one - enough to move a YOLO11n box (the attention block of model.10).
The reference therefore computes the Softmax the way the chip does and lets ESP-PPQ quantize it.

What the chip computes (esp-dl 3.3.x, built with `-ffast-math -O3`):
- int8 input: `exp_table[q + 128]` where `exp_table[i] = expf(DL_SCALE(e) * (i - 128))`, no max
  subtraction;
- int16 input: `expf(q * 2**e - max)` (the float path, with the max subtracted);
- the sum accumulated in order in float32, then every element multiplied by `1 / sum`: GCC turns
  `x / sum` into `x * (1 / sum)` under -ffast-math (checked with GCC 12.2 for rv32imafc: one
  `fdiv.s` per row, then `fmul.s` in the loop).
"""

from __future__ import annotations

import numpy as np

from host.errors import HarnessError
from host.chip.libm import expf_of_multiples
from host.chip.rounding import pow2_exponent


def espdl_softmax(q: np.ndarray, exponent: int, axis: int = -1) -> np.ndarray:
    """ESP-DL's Softmax of an int8 or int16 tensor with power-of-two `exponent`; float32 result."""
    q = np.asarray(q)
    if q.dtype not in (np.int8, np.int16):
        raise HarnessError(f"ESP-DL's quantized Softmax takes int8 or int16 input, got {q.dtype}")
    moved = np.moveaxis(q.astype(np.int64), axis, -1)
    if q.dtype == np.int16:
        # q * 2**e and max * 2**e are exact in float32, and so is their difference (< 2**24 steps).
        moved = moved - moved.max(axis=-1, keepdims=True)
    e = expf_of_multiples(moved, exponent)
    total = np.zeros(e.shape[:-1], dtype=np.float32)
    for i in range(e.shape[-1]):
        total = total + e[..., i]
    reciprocal = np.float32(1.0) / total
    return np.moveaxis(e * reciprocal[..., None], -1, axis)


def softmax_hooks(graph, executor) -> dict:
    """RuntimeHooks, by operation name, that make `executor` compute every quantized Softmax as ESP-DL does.

    Softmax ops whose input is not an int8/int16 power-of-two tensor are left to ESP-PPQ (the
    chip would run its float path on them, which ESP-PPQ's float softmax already approximates).
    """
    import torch
    from esp_ppq.core import QuantizationStates
    from esp_ppq.executor.base import RuntimeHook

    class EspdlSoftmaxHook(RuntimeHook):
        def __init__(self, operation, exponent: int, dtype: np.dtype, axis: int) -> None:
            super().__init__(operation)
            self.exponent, self.dtype, self.axis = exponent, dtype, axis
            self._q: np.ndarray | None = None

        def pre_forward_hook(self, inputs: list, **kwargs) -> list:
            values = inputs[0].detach().cpu().numpy().astype(np.float64) * 2.0 ** -self.exponent
            q = np.rint(values)
            if np.abs(values - q).max(initial=0.0) > 1e-3:
                raise HarnessError(
                    f"input of {self._hook_to.name} is not on its {self.dtype} grid with exponent {self.exponent}: "
                    f"the graph is not fully quantized; quantize it with an ESP-DL target preset"
                )
            info = np.iinfo(self.dtype)
            self._q = np.clip(q, info.min, info.max).astype(self.dtype)
            return inputs

        def post_forward_hook(self, outputs: list, **kwargs) -> list:
            y = torch.from_numpy(espdl_softmax(self._q, self.exponent, self.axis))
            config = self._hook_to.output_quant_config[0]
            if QuantizationStates.is_activated(config.state):
                y = executor.quantize_function(y, config)
            self._q = None
            return [y]

    hooks = {}
    for op in graph.operations.values():
        if op.type != "Softmax" or not hasattr(op, "input_quant_config"):
            continue
        config = op.input_quant_config[0]
        if config.state == QuantizationStates.FP32 or int(config.num_of_bits) not in (8, 16):
            continue
        dtype = np.dtype(np.int8 if int(config.num_of_bits) == 8 else np.int16)
        hooks[op.name] = EspdlSoftmaxHook(op, pow2_exponent(config.scale, f"input of {op.name}"), dtype,
                                          int(op.attributes.get("axis", -1)))
    return hooks
