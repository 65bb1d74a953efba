"""The bad inputs of tests/host/errors, built once per session from real files (fixtures, a tiny .espdl)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FIXTURE_PT = ROOT / "fixtures" / "model" / "yolo11n_fixture.pt"
GOOD_PNG = ROOT / "fixtures" / "images" / "square_320x320.png"


def _tiny_espdl(folder: Path) -> Path:
    """A split-head detector .espdl (outputs box0..score2) whose input is 64x64, quantized by esp-ppq."""
    import onnx

    from tests.host.builders import write_tiny_detector
    from tests.host.espdl import _builders as builders

    onnx_path = write_tiny_detector(folder / "tiny64.onnx", imgsz=64)
    with contextlib.redirect_stdout(io.StringIO()):
        return builders.quantize(onnx.load(str(onnx_path)), [(1, 3, 64, 64)], folder, "tiny64", "esp32p4")


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory) -> dict[str, str]:
    """Placeholder name -> path of the malformed (and the few good) files the table's rows refer to."""
    return build_bad_inputs(tmp_path_factory.mktemp("bad_inputs"))


def build_bad_inputs(d: Path) -> dict[str, str]:
    """Write every file the rows need into the empty folder `d` (about 15 s: one tiny esp-ppq quantization)."""
    paths: dict[str, Path] = {}

    def put(name: str, path: Path) -> Path:
        paths[name] = path
        return path

    # a real, good .espdl (64x64 detector) and the malformed files made from it
    good = put("espdl64", _tiny_espdl(d))
    data = good.read_bytes()
    put("truncated_espdl", d / "truncated.espdl").write_bytes(data[: len(data) // 3])
    put("text_espdl", d / "notes.espdl").write_text("this is not a model\n")
    from host.espdl import write_pdl3

    pack = bytearray(write_pdl3({"yolo11n": data}))
    pack[len(pack) // 2] ^= 0xFF  # one flipped byte inside the model: the stored sha256 no longer matches
    put("bad_pdl3", d / "bad_checksum.bin").write_bytes(bytes(pack))
    put("onnx_not_split", d / "plain.onnx").write_bytes((d / "tiny64.onnx").read_bytes())
    _rename_onnx_outputs(paths["onnx_not_split"])
    put("onnx_text", d / "text.onnx").write_text("ir_version: 8\nthis is not protobuf\n")

    # .pt files
    pt = FIXTURE_PT.read_bytes()
    put("text_pt", d / "weights.pt").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\n")
    put("truncated_pt", d / "truncated.pt").write_bytes(pt[: len(pt) // 2])
    put("missing_pt", d / "nowhere" / "yolo11n.pt")

    # images
    png = GOOD_PNG.read_bytes()
    put("truncated_png", d / "truncated.png").write_bytes(png[: len(png) // 2])
    put("missing_png", d / "nowhere" / "image.png")
    put("empty_dir", d / "empty").mkdir()
    put("missing_dir", d / "no_such_folder")
    put("calib_empty", d / "calib_empty").mkdir()
    (paths["calib_empty"] / "readme.txt").write_text("no images here\n")
    put("regular_file", d / "a_file").write_text("a regular file, not a folder\n")
    put("report_dir", d / "reports")

    # latency results
    put("missing_latency", d / "nowhere" / "latency.json")
    put("latency_not_json", d / "latency_not_json.json").write_text('{"meta": {"target": "esp32p4"}, "windows": [')
    put("latency_no_windows", d / "latency_no_windows.json").write_text(json.dumps({"meta": {"target": "esp32p4"}}))
    meta = {"dut_kind": "sim", "target": "esp32p4", "chip_revision": "v1.0", "model_sha256": "0" * 64, "imgsz": 320,
            "firmware_config": "uart"}
    windows = [{stage: [1000.0 + i for i in range(5)] for stage in ("pre", "model", "post")}]
    put("latency_ok", d / "latency_ok.json").write_text(json.dumps({"meta": meta, "windows": windows}))

    # firmware: an ESP-IDF build directory with nothing to flash (enough for `plan`), a pack that is not PDL3
    build = put("fw_build", d / "fw_build")
    build.mkdir()
    (build / "flasher_args.json").write_text(json.dumps({"flash_files": {}, "extra_esptool_args": {"chip": "esp32p4"}}))
    broken = put("fw_build_broken", d / "fw_build_broken")
    broken.mkdir()
    (broken / "flasher_args.json").write_text('{"flash_files": {"0x0": "bootloader.bin"')
    put("not_pdl3_pack", d / "model.espdl").write_bytes(data)
    put("missing_pack", d / "nowhere" / "models.bin")
    put("out", d / "out")
    shutil.copy(GOOD_PNG, put("good_png", d / "good.png"))

    out = {name: str(path) for name, path in paths.items()}
    out["root"] = str(ROOT)
    out["fixture_pt"] = str(FIXTURE_PT)
    return out


def _rename_onnx_outputs(path: Path) -> None:
    """The detector's ONNX with its outputs renamed output0..output5, as another exporter names them: not split-head."""
    import onnx

    model = onnx.load(str(path))
    old = [o.name for o in model.graph.output]
    for i, name in enumerate(old):
        new = f"output{i}"
        model.graph.output[i].name = new
        for node in model.graph.node:
            node.output[:] = [new if o == name else o for o in node.output]
    onnx.save(model, str(path))
