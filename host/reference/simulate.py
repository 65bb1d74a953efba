"""Run the quantized graph in ESP-PPQ's executor and return ESP-DL-shaped int outputs by name.

ESP-PPQ's TorchExecutor computes with fake-quantized float32 tensors on the `int * 2**exp` grid,
the same arithmetic whose results esp-ppq embeds in the .espdl as test values, so its outputs
divided by their scale are the integers the chip must produce. One op is not on a grid: ESP-PPQ
keeps Softmax float, so the executor runs it through ESP-DL's own Softmax arithmetic
(host.reference.softmax) instead of torch's - otherwise the int8 value after the exporter's
QuantizeLinear can differ from the chip's by one near a rounding boundary. And int16 layers
accumulate in float64 (host.reference.int16), as exact as the chip's integer sums. This module converts between that
world (NCHW float) and ESP-DL's (NHWC int8 + one power-of-two exponent per tensor), reads every
exponent from the graph's quantization configs (never assumed), and offers a float reference
(onnxruntime on the float ONNX) with per-output quantization error figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from host.errors import HarnessError
from host.chip.detection import OUTPUT_NAMES
from host.chip.pipeline import InputSpec, RawOutputs
from host.chip.rounding import pow2_exponent
from host.reference.int16 import int16_accumulation_hooks
from host.reference.softmax import softmax_hooks


def _int_dtype(config, what: str) -> np.dtype:
    bits = int(config.num_of_bits)
    if bits == 8:
        return np.dtype(np.int8)
    if bits == 16:
        return np.dtype(np.int16)
    raise HarnessError(f"{what} is quantized to {bits} bits; ESP-DL tensors are int8 or int16")


class PPQSimulator:
    """A loaded ESP-PPQ quantized graph plus its executor, reused across images: the reference's engine."""

    name = "ESP-PPQ executor"

    def __init__(self, graph_or_path) -> None:
        import torch
        from esp_ppq.executor import TorchExecutor

        if isinstance(graph_or_path, (str, Path)):
            path = Path(graph_or_path)
            if not path.is_file():
                raise HarnessError(
                    f"quantized graph {path} does not exist: quantize the model with `python -m host quantize` "
                    f"(it writes the esp_ppq native graph next to the .espdl)"
                )
            from esp_ppq.api import load_native_graph

            self.graph = load_native_graph(str(path))
            self.graph_path: Path | None = path
        else:
            self.graph = graph_or_path
            self.graph_path = None
        self._torch = torch
        self.output_names = self._check_outputs()
        self.input_name, self.input_exponent, self.input_dtype, self.input_shape = self._input_info()
        self.output_exponents: dict[str, int] = {}
        self.output_dtypes: dict[str, np.dtype] = {}
        for name in self.output_names:
            config = self._output_config(name)
            self.output_exponents[name] = pow2_exponent(config.scale, f"output {name}")
            self.output_dtypes[name] = _int_dtype(config, f"output {name}")
        self.executor = TorchExecutor(self.graph, device="cpu")
        self.hooks = softmax_hooks(self.graph, self.executor) | int16_accumulation_hooks(self.graph)

    def _check_outputs(self) -> tuple[str, ...]:
        have = set(self.graph.outputs)
        missing = [n for n in OUTPUT_NAMES if n not in have]
        if missing:
            raise HarnessError(
                f"the quantized graph lacks outputs {', '.join(missing)} (it has {', '.join(sorted(have))}): "
                f"ESP-DL's yolo11 postprocess needs box0/score0/box1/score1/box2/score2; export the model "
                f"with the split detection head (host.model)"
            )
        return OUTPUT_NAMES

    def _input_info(self):
        if len(self.graph.inputs) != 1:
            raise HarnessError(f"the graph has inputs {list(self.graph.inputs)}; a YOLO11 detector has one image input")
        name, var = next(iter(self.graph.inputs.items()))
        configs = [
            op.input_quant_config[op.inputs.index(var)]
            for op in var.dest_ops
            if hasattr(op, "input_quant_config")
        ]
        if not configs:
            raise HarnessError(f"graph input {name} is not quantized: pass an ESP-PPQ quantized graph")
        exponent = pow2_exponent(configs[0].scale, f"input {name}")
        dtype = _int_dtype(configs[0], f"input {name}")
        shape = tuple(int(v) for v in (var.shape or ()))
        return name, exponent, dtype, shape

    def _output_config(self, name: str):
        var = self.graph.outputs[name]
        op = var.source_op
        if op is None or not hasattr(op, "output_quant_config"):
            raise HarnessError(f"output {name} is not produced by a quantized op: pass an ESP-PPQ quantized graph")
        return op.output_quant_config[op.outputs.index(var)]

    @property
    def imgsz(self) -> tuple[int, int]:
        """(height, width) of the model input (NCHW in the graph)."""
        if len(self.input_shape) != 4:
            raise HarnessError(f"graph input {self.input_name} has shape {self.input_shape}, expected [1, 3, H, W]")
        return int(self.input_shape[2]), int(self.input_shape[3])

    @property
    def input(self) -> InputSpec:
        height, width = self.imgsz
        return InputSpec(self.input_name, width, height, self.input_exponent, 8 * self.input_dtype.itemsize)

    def input_float(self, tensor_nhwc: np.ndarray) -> np.ndarray:
        """The float NCHW tensor ESP-PPQ sees for an int NHWC input: q * 2**exp."""
        t = np.asarray(tensor_nhwc)
        if t.ndim != 4 or t.shape[0] != 1 or t.shape[3] != 3:
            raise HarnessError(f"input tensor has shape {t.shape}, expected int8 NHWC [1, H, W, 3]")
        if not np.issubdtype(t.dtype, np.integer):
            raise HarnessError(f"input tensor has dtype {t.dtype}: pass the integer tensor from preprocess()")
        return np.ascontiguousarray(
            (t.astype(np.float32) * np.float32(2.0**self.input_exponent)).transpose(0, 3, 1, 2)
        )

    def run(self, tensor_nhwc: np.ndarray) -> RawOutputs:
        """Execute the quantized graph on an int NHWC input; int NHWC outputs by name."""
        results = self._forward(tensor_nhwc, list(self.output_names))
        tensors = {}
        for name, out in zip(self.output_names, results):
            exp = self.output_exponents[name]
            dtype = self.output_dtypes[name]
            values = out.detach().cpu().numpy().astype(np.float64) * 2.0 ** (-exp)
            q = np.rint(values)
            info = np.iinfo(dtype)
            if np.abs(values - q).max(initial=0.0) > 1e-3 or q.min(initial=0) < info.min or q.max(initial=0) > info.max:
                raise HarnessError(
                    f"output {name} is not on its {dtype} grid with exponent {exp}: the graph is not "
                    f"fully quantized; quantize it with an ESP-DL target preset"
                )
            tensors[name] = np.ascontiguousarray(q.astype(dtype).transpose(0, 2, 3, 1))
        return RawOutputs(tensors=tensors, exponents=dict(self.output_exponents))

    def _forward(self, tensor_nhwc: np.ndarray, names: list[str]) -> list:
        torch = self._torch
        x = torch.from_numpy(self.input_float(tensor_nhwc))
        with torch.no_grad():
            return self.executor.forward(inputs=x, output_names=names, hooks=self.hooks)

    def intermediates(self, tensor_nhwc: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """Named intermediate tensors as the executor holds them (float, NCHW), for stage-by-stage diffs."""
        unknown = [n for n in names if n not in self.graph.variables]
        if unknown:
            raise HarnessError(f"the quantized graph has no tensors named {', '.join(unknown[:5])}")
        return {n: v.detach().cpu().numpy() for n, v in zip(names, self._forward(tensor_nhwc, list(names)))}


class FloatReference:
    """onnxruntime on the float split-head ONNX: what the quantized outputs approximate."""

    def __init__(self, onnx_path: str | Path) -> None:
        import onnxruntime as ort

        path = Path(onnx_path)
        if not path.is_file():
            raise HarnessError(f"float ONNX {path} does not exist: pass the split-head ONNX the model was quantized from")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [o.name for o in self.session.get_outputs()]
        missing = [n for n in OUTPUT_NAMES if n not in names]
        if missing:
            raise HarnessError(f"float ONNX {path} lacks outputs {', '.join(missing)}: export it with the split head")
        self.input_name = self.session.get_inputs()[0].name

    def run(self, input_nchw: np.ndarray) -> dict[str, np.ndarray]:
        """float32 NHWC outputs by name for a float NCHW input."""
        results = self.session.run(list(OUTPUT_NAMES), {self.input_name: np.asarray(input_nchw, dtype=np.float32)})
        return {n: np.ascontiguousarray(r.transpose(0, 2, 3, 1)) for n, r in zip(OUTPUT_NAMES, results)}


@dataclass(frozen=True)
class OutputError:
    """How far one dequantized int output is from the float model's output."""

    snr_db: float
    max_abs: float
    mean_abs: float

    def to_dict(self) -> dict:
        return {"snr_db": self.snr_db, "max_abs": self.max_abs, "mean_abs": self.mean_abs}


def quantization_error(raw: RawOutputs, reference: Mapping[str, np.ndarray]) -> dict[str, OutputError]:
    """Per-output SNR (dB, signal = float output) and absolute errors of the dequantized int outputs."""
    errors = {}
    for name, deq in raw.dequantized().items():
        ref = np.asarray(reference[name], dtype=np.float64)
        diff = deq.astype(np.float64) - ref
        noise = float(np.sum(diff**2))
        signal = float(np.sum(ref**2))
        snr = math.inf if noise == 0 else (10.0 * math.log10(signal / noise) if signal > 0 else -math.inf)
        errors[name] = OutputError(snr_db=snr, max_abs=float(np.abs(diff).max()), mean_abs=float(np.abs(diff).mean()))
    return errors
