"""Export a YOLO11n to the split-head ONNX that ESP-DL's yolo11 pipeline expects, and check ONNX files.

ESP-DL runs the network without the Detect head's decoding: the six raw head outputs
`box0, score0, box1, score1, box2, score2` (strides 8, 16, 32) leave the graph, and DFL, sigmoid
and box arithmetic happen in the C++ postprocessor. Espressif's own export script no longer runs
on current ultralytics, so this module does the same transformation itself: it swaps the forward
of the Detect head and of the attention block (batch-agnostic views, scale applied after the
q^T k product as in Espressif's export), then exports with the TorchScript exporter at opset 13
and simplifies with onnxsim (ultralytics' onnxslim path reshapes NCHW tensors in a way ESP-DL
cannot lay out).
"""

from __future__ import annotations

import copy
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host.chip.detection import INPUT_NAME, OUTPUT_NAMES
from host.errors import HarnessError

OPSET = 13


@dataclass(frozen=True)
class ExportCheck:
    """How far the exported ONNX is from the PyTorch model on one input."""

    max_abs_diff: float
    per_output: dict[str, float]


def _split_head_forward(self, x):
    outputs = []
    for i in range(self.nl):
        outputs += [self.cv2[i](x[i]), self.cv3[i](x[i])]
    return tuple(outputs)


def _attention_forward(self, x):
    _, channels, height, width = x.shape
    n = height * width
    qkv = self.qkv(x)
    q, k, v = qkv.view(-1, self.num_heads, self.key_dim * 2 + self.head_dim, n).split(
        [self.key_dim, self.key_dim, self.head_dim], dim=2
    )
    attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(dim=-1)
    out = (v @ attn.transpose(-2, -1)).view(-1, channels, height, width)
    return self.proj(out + self.pe(v.reshape(-1, channels, height, width)))


def load_torch_model(source):
    """The ultralytics DetectionModel for a `.pt` or `.yaml` ModelSource, in eval mode, fused."""
    from ultralytics import YOLO

    spec = str(source.path) if source.path is not None else source.name
    try:
        yolo = YOLO(spec)
    except Exception as exc:
        raise HarnessError(
            f"ultralytics could not load {spec!r} ({type(exc).__name__}: {exc}); "
            "pass a YOLO11 detection .pt or .yaml"
        ) from exc
    if getattr(yolo, "task", None) != "detect":
        raise HarnessError(f"{spec} is a {yolo.task!r} model; the harness needs a YOLO11 detection model")
    model = yolo.model
    model.eval()
    return model


def split_head_module(model):
    """A fused deep copy of `model` whose forward returns the six raw head tensors."""
    from ultralytics.nn.modules import Attention, Detect

    module = copy.deepcopy(model).float().eval()
    module = module.fuse() if hasattr(module, "fuse") else module
    heads = [m for m in module.modules() if isinstance(m, Detect)]
    if len(heads) != 1 or heads[0].nl != 3:
        raise HarnessError("the model has no single three-level Detect head: it is not a YOLO11 detector")
    for m in module.modules():
        if isinstance(m, Detect):
            m.forward = types.MethodType(_split_head_forward, m)
        elif isinstance(m, Attention):
            m.forward = types.MethodType(_attention_forward, m)
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def export_onnx(model, imgsz: int, out_path: Path, seed: int = 0) -> ExportCheck:
    """Write the split-head ONNX for square input `imgsz` and compare it with PyTorch."""
    import onnx
    import onnxsim
    import torch

    if imgsz % 32 != 0 or imgsz < 32:
        raise HarnessError(f"input size {imgsz} is not a positive multiple of 32 (the largest stride); use e.g. 320 or 640")
    module = split_head_module(model)
    dummy = torch.zeros(1, 3, imgsz, imgsz)
    out_path = Path(out_path)
    tmp = out_path.with_suffix(".raw.onnx")
    torch.onnx.export(
        module,
        (dummy,),
        str(tmp),
        opset_version=OPSET,
        do_constant_folding=False,
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        dynamo=False,
    )
    simplified, ok = onnxsim.simplify(onnx.load(str(tmp)))
    tmp.unlink()
    if not ok:
        raise HarnessError("onnxsim could not validate the simplified model; report this with the model file")
    onnx.save(simplified, str(out_path))
    check_split_head_onnx(out_path, imgsz)

    generator = torch.Generator().manual_seed(seed)
    sample = torch.rand(1, 3, imgsz, imgsz, generator=generator)
    with torch.no_grad():
        expected = [t.numpy() for t in module(sample)]
    got = run_onnx(out_path, sample.numpy())
    per_output = {
        name: float(np.max(np.abs(got[name] - ref))) for name, ref in zip(OUTPUT_NAMES, expected)
    }
    return ExportCheck(max(per_output.values()), per_output)


def run_onnx(path: Path, image_nchw: np.ndarray) -> dict[str, np.ndarray]:
    """Float outputs of an ONNX model by name (onnxruntime, CPU, 2 threads, deterministic order)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {session.get_inputs()[0].name: image_nchw.astype(np.float32)})
    return dict(zip(names, values))


def check_split_head_onnx(path: Path, imgsz: int | None = None) -> int:
    """Check an ONNX file is a split-head YOLO11 export; return its square input size."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise HarnessError(f"{path} is not a readable ONNX model ({exc}); re-export it") from exc
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1:
        raise HarnessError(f"{path} has {len(inputs)} inputs; a split-head YOLO11 export has one, 'images'")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[0] != 1 or dims[1] != 3 or dims[2] != dims[3] or dims[2] <= 0:
        raise HarnessError(
            f"{path}: input {inputs[0].name!r} has shape {dims}; expected a static [1, 3, S, S] "
            "(export with a fixed square imgsz)"
        )
    outputs = [o.name for o in model.graph.output]
    if sorted(outputs) != sorted(OUTPUT_NAMES):
        raise HarnessError(
            f"{path} has outputs {outputs}; ESP-DL's yolo11 postprocess needs exactly {list(OUTPUT_NAMES)} "
            "(the raw Detect head, no DFL/concat). Export the .pt with `python -m host quantize model.pt ...` "
            "instead of ultralytics' own exporter"
        )
    if imgsz is not None and dims[2] != imgsz:
        raise HarnessError(f"{path} is exported for input {dims[2]}, not {imgsz}; pass --imgsz {dims[2]} or re-export")
    return dims[2]
