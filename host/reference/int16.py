"""Exact accumulation for int16 layers in ESP-PPQ's executor, as the chip accumulates them.

Why: ESP-PPQ simulates an int16 Conv/Gemm/MatMul in float32. Its sums of int16 x int8/int16
products reach 2**30 and more, beyond float32's 24-bit mantissa, so the simulated result is off
by one now and then (17 of the first int16 conv's outputs on the fixture model's test image).
ESP-DL accumulates in integers (int64 for int16 inputs), which float64 reproduces exactly: every
product is below 2**31 and the sums stay far below 2**53. ESP-PPQ already does this for its
high-precision int16 platforms; this hook does it for the plain int16 ones.
"""

from __future__ import annotations

ACCUMULATING_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


def int16_accumulation_hooks(graph) -> dict:
    """RuntimeHooks, by operation name, that run every int16 accumulating op in float64."""
    import torch
    from esp_ppq.core import TargetPlatform
    from esp_ppq.executor.base import RuntimeHook

    int16_platforms = {p for p in TargetPlatform
                       if p.name.startswith("ESPDL") and p.name.endswith("_INT16") and "H_PRE" not in p.name}

    class Float64Hook(RuntimeHook):
        def pre_forward_hook(self, inputs: list, **kwargs) -> list:
            return [x.to(torch.float64) if isinstance(x, torch.Tensor) and x.dtype == torch.float32 else x
                    for x in inputs]

    return {
        op.name: Float64Hook(op)
        for op in graph.operations.values()
        if op.type in ACCUMULATING_OPS and op.platform in int16_platforms and hasattr(op, "config")
    }
