"""Turn a model into the .espdl the device runs: export, calibrate and quantize with ESP-PPQ, cached.

The cache key holds everything the bytes of the .espdl depend on: the model's sha256, input size,
target, preset, calibration set and its preprocessing, the test image, the esp-dl release the
export is adjusted for, and the versions of the tools. A warm call costs a hash of the inputs and
a verified read of the entry.

ESP-PPQ's exported bytes depend on Python's string hashing (graph variables live in a set), so the
quantization itself runs under PYTHONHASHSEED=0: in this process when it was started that way
(as `.ci/run` and the README do), otherwise in a child process, which the output says.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from host.chip.releases import FIRMWARE_ESPDL_VERSION, espdl_features
from host.model import compat
from host.cache import ArtifactCache, sha256_file
from host.errors import HarnessError
from host.model import calib as calib_mod
from host.model.fast_flatbuffers import fast_aligned_bytes
from host.chip.detection import OUTPUT_NAMES
from host.model.export import check_split_head_onnx, export_onnx, load_torch_model
from host.chip.targets import check_supported
from host.model.presets import Preset, build_setting, get_preset
from host.model.progress import stage
from host.model.identity import identify, identity_metadata
from host.model.source import ModelSource, check_espdl_detector, resolve_model

#: Bump when the pipeline changes what it writes for the same inputs.
PIPELINE_VERSION = 3  # 3: the identity metadata (host.model.identity) in every .espdl
ESPDL_NAME = "model.espdl"
GRAPH_NAME = "model.native"
ONNX_NAME = "model.onnx"
SUMMARY_NAME = "summary.json"


@dataclass(frozen=True)
class QuantizedModel:
    """A quantized model ready to flash, with what the reference and the report need about it."""

    espdl_path: Path
    sha256: str
    target: str
    imgsz: int
    preset: str
    source: ModelSource
    espdl_version: str
    input_exponent: int
    output_exponents: dict[str, int]
    onnx_path: Path | None = None  # float split-head ONNX (None for a prequantized .espdl)
    graph_path: Path | None = None  # esp_ppq native graph (None for a prequantized .espdl)
    summary: dict = field(default_factory=dict)
    cached: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "espdl": str(self.espdl_path),
            "sha256": self.sha256,
            "target": self.target,
            "imgsz": self.imgsz,
            "preset": self.preset,
            "model": self.source.name,
            "model_sha256": self.source.sha256,
            "espdl_version": self.espdl_version,
            "input_exponent": self.input_exponent,
            "output_exponents": self.output_exponents,
            "onnx": str(self.onnx_path) if self.onnx_path else None,
            "graph": str(self.graph_path) if self.graph_path else None,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
        }


def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("esp-ppq", "torch", "onnx", "onnxsim", "onnxruntime", "ultralytics", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "absent"
    return versions


def quantize_model(
    model: str | Path | None = None,
    target: str = "esp32p4",
    imgsz: int = 320,
    preset: str | Preset = "int8",
    calib_dir: str | Path | None = None,
    calib_mode: str = "letterbox",
    test_image: str | Path | None = None,
    espdl_version: str | None = None,
    export_info: bool = False,
    cache_root: Path | None = None,
    out_dir: Path | None = None,
) -> QuantizedModel:
    """Quantize `model` for `target` at `imgsz` (cached) and return the artifact.

    `test_image` is the picture whose int8 input and outputs are embedded in the .espdl for the
    device's bit-exact self-test (default: the first calibration image). `out_dir`, if given,
    receives a copy of the .espdl and its summary.
    """
    started = time.perf_counter()
    check_supported(target)
    if imgsz % 32 or imgsz < 32:
        raise HarnessError(f"--imgsz {imgsz} is not a positive multiple of 32; use e.g. 320 or 640")
    source = resolve_model(model)
    if source.kind == "onnx":
        check_split_head_onnx(source.path, imgsz)
    espdl_version = espdl_version or FIRMWARE_ESPDL_VERSION
    espdl_features(espdl_version)
    if not source.needs_quantization:
        result = _prequantized(source, target, imgsz, espdl_version)
    else:
        preset_obj = preset if isinstance(preset, Preset) else get_preset(preset)
        calib = calib_mod.find_calibration_set(calib_dir)
        if calib_mode not in calib_mod.MODES:
            raise HarnessError(f"unknown calibration preprocessing {calib_mode!r}; choose one of {calib_mod.MODES}")
        test_path = Path(test_image) if test_image else calib.files[0]
        if not test_path.is_file():
            raise HarnessError(f"test image {test_path} does not exist; pass an existing image file")
        qat_data = _qat_training_set(preset_obj, cache_root)
        spec = {
            "pipeline": PIPELINE_VERSION,
            "model": {"kind": source.kind, "name": source.name, "sha256": source.sha256,
                      "path": str(source.path) if source.path else None},
            "target": target,
            "imgsz": imgsz,
            "preset": preset_obj.describe(),
            "calib": {"folder": str(calib.folder), "sha256": calib.sha256, "mode": calib_mode},
            "test_image": {"path": str(test_path), "sha256": sha256_file(test_path)},
            "espdl_version": espdl_version,
            "adjustments": compat.export_adjustments(espdl_version),
            "export_info": export_info,
            "tools": tool_versions(),
        }
        key = {k: v for k, v in spec.items() if k not in ("calib", "test_image", "model")}
        key["model"] = {"kind": source.kind, "sha256": source.sha256}
        key["calib"] = {"sha256": calib.sha256, "mode": calib_mode}
        key["test_image"] = spec["test_image"]["sha256"]
        if qat_data is not None:  # the training set by content: its folder's path does not change the result
            spec["qat_data"] = qat_data.describe()
            key["preset"] = {k: v for k, v in spec["preset"].items() if k != "qat_data"}
            key["qat_data"] = qat_data.sha256
        cache = ArtifactCache("models", cache_root)
        entry = cache.get_or_build(key, lambda tmp: _build_in_hashseed_0(spec, tmp))
        summary = json.loads(entry.file(SUMMARY_NAME).read_text())
        result = QuantizedModel(
            espdl_path=entry.file(ESPDL_NAME),
            sha256=entry.files[ESPDL_NAME],
            target=target,
            imgsz=imgsz,
            preset=preset_obj.name,
            source=source,
            espdl_version=espdl_version,
            input_exponent=summary["input_exponent"],
            output_exponents=summary["output_exponents"],
            onnx_path=entry.file(ONNX_NAME),
            graph_path=entry.file(GRAPH_NAME),
            summary=summary,
            cached=entry.hit,
        )
    result = replace(result, seconds=time.perf_counter() - started)
    if out_dir is not None:
        _copy_out(result, Path(out_dir))
    return result


def _qat_training_set(preset: Preset, cache_root: Path | None):
    """The checked QAT settings and labelled set of a training preset (None for the others)."""
    if not preset.trains:
        return None
    from host.model import qat

    qat.check_settings(preset.qat_epochs, preset.qat_lr, preset.qat_batch)
    return qat.resolve_training_set(preset.qat_data, cache_root)


def _copy_out(result: QuantizedModel, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "model.espdl"
    tmp = target.with_suffix(".espdl.tmp")
    shutil.copyfile(result.espdl_path, tmp)
    os.replace(tmp, target)
    (out_dir / "model.json").write_text(json.dumps({**result.to_json(), "summary": result.summary}, indent=1))


def _prequantized(source: ModelSource, target: str, imgsz: int, espdl_version: str) -> QuantizedModel:
    """A user-supplied .espdl: nothing to quantize; exponents come from the file itself."""
    model = check_espdl_detector(source.path, imgsz, target)
    inputs = model.inputs
    outputs = {o.name: o.exponent for o in model.outputs}
    return QuantizedModel(
        espdl_path=source.path,
        sha256=source.sha256,
        target=target,
        imgsz=imgsz,
        preset="prequantized",
        source=source,
        espdl_version=espdl_version,
        input_exponent=inputs[0].exponent,
        output_exponents=outputs,
        summary={"prequantized": True, "identity": identify(model).to_json()},
        cached=True,
    )


def _build_in_hashseed_0(spec: dict, out: Path) -> None:
    if os.environ.get("PYTHONHASHSEED") == "0":
        build_entry(spec, out)
        return
    print("[quantize] PYTHONHASHSEED is not 0 in this process: quantizing in a child process with "
          "PYTHONHASHSEED=0 so the .espdl bytes are reproducible", file=sys.stderr, flush=True)
    env = dict(os.environ, PYTHONHASHSEED="0")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "host.model.quantize", json.dumps(spec), str(out)], env=env, cwd=root
    )
    if proc.returncode != 0:
        raise HarnessError(f"quantization failed in the child process (exit {proc.returncode}); see its output above")


def build_entry(spec: dict, out: Path) -> None:
    """Export (if needed), calibrate, quantize and write the entry's files into `out`."""
    import torch

    started = time.perf_counter()
    torch.manual_seed(0)
    np.random.seed(0)
    source = ModelSource(spec["model"]["kind"], Path(spec["model"]["path"]) if spec["model"]["path"] else None,
                         spec["model"]["name"], spec["model"]["sha256"])
    imgsz, target = spec["imgsz"], spec["target"]
    onnx_path = out / ONNX_NAME
    summary: dict = {"spec": spec}
    if source.needs_export:
        with stage("load model"):
            torch_model = load_torch_model(source)
        with stage(f"export split-head ONNX ({imgsz})"):
            check = export_onnx(torch_model, imgsz, onnx_path)
        summary["export_max_abs_diff"] = check.max_abs_diff
        summary["export_diff_per_output"] = check.per_output
    else:
        check_split_head_onnx(source.path, imgsz)
        shutil.copyfile(source.path, onnx_path)
    with stage("read calibration set"):
        calib = calib_mod.find_calibration_set(spec["calib"]["folder"])
        if calib.sha256 != spec["calib"]["sha256"]:
            raise HarnessError(f"calibration folder {calib.folder} changed while quantizing; run again")
        images = calib_mod.calibration_tensors(calib, imgsz, spec["calib"]["mode"])
        test_input = calib_mod.image_tensor(Path(spec["test_image"]["path"]), imgsz, spec["calib"]["mode"])
    graph = _quantize(onnx_path, out, images, test_input, spec, summary)
    with stage("embedded test values vs the chip's arithmetic"):
        summary["test_values"] = align_test_values(out / ESPDL_NAME, graph, target, spec["espdl_version"])
    with stage("save graph and summary"):
        from esp_ppq.parser.native import NativeExporter

        NativeExporter().export(str(out / GRAPH_NAME), graph)
        summary.update(graph_summary(graph, images[: spec["preset"]["batch_size"]]))
        summary["calibration_images"] = len(images)
        summary["build_seconds"] = round(time.perf_counter() - started, 1)  # what a cache hit reports as its cost
        (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=1, sort_keys=True))


def _quantize(onnx_path: Path, out: Path, images: np.ndarray, test_input: np.ndarray, spec: dict, summary: dict):
    import onnx
    import torch
    from esp_ppq.api import espdl_quantize_onnx
    from esp_ppq.core.quant import TensorQuantizationConfig
    from esp_ppq.log import NaiveLogger

    for name in ("ESPDL", "PPQ"):
        NaiveLogger.get_logger(name).set_level("warning")
    TensorQuantizationConfig._hash_seed = 0
    preset = Preset(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["preset"].items()})
    op_names = {n.name for n in onnx.load(str(onnx_path), load_external_data=False).graph.node}
    setting = build_setting(preset, spec["target"], op_names)
    adjustments = spec["adjustments"]
    compat.apply_to_setting(setting, adjustments)
    batch = preset.batch_size
    batches = [torch.from_numpy(images[i:i + batch]) for i in range(0, len(images), batch)]
    steps = max(2, len(batches))  # esp-ppq needs >= 2 steps and cycles a short loader
    # esp-ppq rewrites its input file with the simplified model: hand it a copy.
    work_onnx = out / "work.onnx"
    shutil.copyfile(onnx_path, work_onnx)
    imgsz = spec["imgsz"]
    metadata = {"harness": f"yolo11-hil pipeline v{PIPELINE_VERSION}", **identity_metadata(
        spec["target"], imgsz, preset.name, spec["tools"]["esp-ppq"], spec["calib"]["sha256"], spec["espdl_version"])}
    with stage(f"quantize with ESP-PPQ ({spec['target']}, {preset.name}, {len(images)} images)"):
        with compat.exporter_adjusted(adjustments), fast_aligned_bytes():
            graph = espdl_quantize_onnx(
                onnx_import_file=str(work_onnx),
                espdl_export_file=str(out / ESPDL_NAME),
                calib_dataloader=batches,
                calib_steps=steps,
                input_shape=[1, 3, imgsz, imgsz],
                inputs=[torch.from_numpy(test_input)],
                target=spec["target"],
                collate_fn=lambda x: x.to("cpu"),
                setting=setting,
                device="cpu",
                error_report=False,
                skip_export=preset.trains,  # QAT exports after training, below
                export_config=spec["export_info"],
                export_test_values=True,
                metadata_props=metadata,
                verbose=0,
            )
    work_onnx.unlink()
    if preset.trains:
        summary["qat"] = _train(graph, spec, preset)
        with stage("export the trained graph to .espdl"):
            with compat.exporter_adjusted(adjustments), fast_aligned_bytes():
                export_espdl(graph, out / ESPDL_NAME, test_input, spec["target"], spec["export_info"], metadata)
    return graph


def _train(graph, spec: dict, preset: Preset) -> dict:
    """Quantization-aware training of the calibrated graph, in place (host.model.qat); returns its record."""
    from host.model import qat

    data = qat.find_training_set(spec["qat_data"]["folder"])
    if data.sha256 != spec["qat_data"]["sha256"]:
        raise HarnessError(f"QAT training folder {data.folder} changed while quantizing; run again")
    with stage(f"quantization-aware training ({preset.qat_epochs} epochs, {len(data.images)} images, "
               f"batch {preset.qat_batch}, lr {preset.qat_lr})"):
        return qat.train(graph, data, spec["imgsz"], preset.qat_epochs, preset.qat_lr, preset.qat_batch,
                         list(OUTPUT_NAMES))


def export_espdl(graph, path: Path, test_input: np.ndarray, target: str, export_config: bool,
                 metadata: dict[str, str]) -> None:
    """Write a quantized graph as .espdl with embedded test values, as `espdl_quantize_onnx`'s export step does.

    The same esp-ppq calls with the same arguments as that function's step 3 for an 8-bit target
    (`generate_test_value` on the test input, then `Exporter(platform).export`), for graphs that were
    changed after calibration (QAT). Call it inside the same `exporter_adjusted`/`fast_aligned_bytes`
    contexts; `tests/host/model/test_qat.py` checks it writes the bytes `espdl_quantize_onnx` writes.
    """
    import esp_ppq.lib as PFL
    import torch
    from esp_ppq.api import get_target_platform
    from esp_ppq.api.espdl_interface import generate_test_value

    platform = get_target_platform(target, 8, debug=False, metadata_props=metadata)
    values_for_test = generate_test_value(graph, "cpu", [torch.from_numpy(test_input)], None)
    PFL.Exporter(platform=platform).export(
        file_path=str(path), graph=graph, values_for_test=values_for_test, export_config=export_config,
        auto_streaming=False, streaming_table=None, streaming_input_shape=None, streaming_custom_passes=None,
        metadata_props=metadata,
    )


def align_test_values(espdl_path: Path, graph, target: str, espdl_version: str) -> dict:
    """Make the .espdl's embedded test outputs the values the chip computes, so Model::test() can pass.

    esp-ppq embeds its own simulation's outputs, which can miss the chip by one step (float Softmax,
    float32 int16 sums). Two independent chip models run the embedded test input: the emulator on the
    .espdl and the reference's corrected ESP-PPQ executor. When they agree with each other but not with
    the embedded values, the embedded values are rewritten (only those bytes change); when they disagree
    with each other nothing is rewritten and the summary says so.
    """
    from host.espdl import Emulator, load
    from host.espdl.testvalues import rewrite_test_outputs
    from host.reference.simulate import PPQSimulator

    model = load(espdl_path)
    vi = model.inputs[0]
    test_input = model.test_inputs[vi.name].array.reshape(vi.shape)
    names = [n for n in OUTPUT_NAMES if n in model.test_outputs]
    chip = Emulator(model, target=target, espdl_version=espdl_version).run({vi.name: test_input}, outputs=names)
    reference = PPQSimulator(graph).run(test_input).tensors
    embedded = {n: model.test_outputs[n].array.reshape(chip[n].shape) for n in names}
    differing = {n: int((chip[n] != embedded[n]).sum()) for n in names if not np.array_equal(chip[n], embedded[n])}
    engines_agree = all(np.array_equal(chip[n], reference[n]) for n in names)
    if not differing:
        status = "as exported"
    elif engines_agree:
        espdl_path.write_bytes(rewrite_test_outputs(espdl_path.read_bytes(), {n: chip[n] for n in differing}))
        status = "rewritten to the chip's values"
    else:
        status = "differ from the chip model, which disagrees with itself: not rewritten"
    if differing:
        print(f"[host] embedded test outputs {status}: {differing} values differed from the chip's arithmetic",
              file=sys.stderr, flush=True)
    return {"status": status, "differing_values": differing, "emulator_equals_reference": engines_agree}


def graph_summary(graph, sample: np.ndarray) -> dict:
    """Input/output exponents and per-output int8 saturation rate on a sample of calibration images."""
    import torch
    from esp_ppq.executor import TorchExecutor

    def exponent(config) -> int:
        scale = float(config.scale.flatten()[0])
        value = math.log2(scale)
        if abs(value - round(value)) > 1e-6:
            raise HarnessError(f"quantization scale {scale} is not a power of two; ESP-DL needs power-of-two scales")
        return int(round(value))

    input_var = next(iter(graph.inputs.values()))
    consumer = input_var.dest_ops[0]
    input_exponent = exponent(consumer.input_quant_config[consumer.inputs.index(input_var)])
    output_exponents, saturation = {}, {}
    executor = TorchExecutor(graph, device="cpu")
    values = executor.forward(inputs=torch.from_numpy(sample), output_names=list(OUTPUT_NAMES))
    for name, value in zip(OUTPUT_NAMES, values):
        var = graph.variables[name]
        producer = var.source_op
        config = producer.output_quant_config[producer.outputs.index(var)]
        exp = exponent(config)
        output_exponents[name] = exp
        ints = torch.round(value / (2.0 ** exp))
        bound_hi, bound_lo = config.quant_max, config.quant_min
        saturation[name] = float(((ints >= bound_hi) | (ints <= bound_lo)).float().mean())
    return {
        "input_exponent": input_exponent,
        "output_exponents": output_exponents,
        "output_saturation_rate": saturation,
        "saturation_sample_images": int(sample.shape[0]),
        "op_types": _op_histogram(graph),
    }


def _op_histogram(graph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in graph.operations.values():
        counts[op.type] = counts.get(op.type, 0) + 1
    return dict(sorted(counts.items()))


if __name__ == "__main__":  # the child-process entry used by _build_in_hashseed_0
    build_entry(json.loads(sys.argv[1]), Path(sys.argv[2]))
