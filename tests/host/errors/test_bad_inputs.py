"""Issue 18: a bad option or input ends in one line, once, before anything starts.

One table over both entry points, each row run as a subprocess from the repo root:

- `python -m pytest --target esp32p4 --dut sim [option]`: the option is refused at configure time by
  host/hil/options.py's `validate()` (or the DUT choice), which the plugin turns into a pytest.UsageError:
  exit 4 and one line `ERROR: yolo11-hil: ...`;
- `python -m host <command> ...`: a HarnessError (or argparse) prints one `error: ...` line and exits 2.

Every row asserts the exit code, no traceback, exactly one message line, that the line names the bad
input (path, option or value) and carries the fix, and that the run took well under 10 s (nothing heavy
such as an export or a quantization started before the refusal).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LIMIT_S = 10.0


@dataclass(frozen=True)
class Row:
    entry: str  # "pytest" (exit 4) or "host" (exit 2)
    args: tuple[str, ...]  # with {placeholders} from the bad_inputs fixture
    names: str  # substring of the message line naming the bad input
    fix: str  # substring of the message line that is the fix

    def argv(self, files: dict[str, str]) -> list[str]:
        args = [a.format(**files) for a in self.args]
        if self.entry == "pytest":
            report = [] if any(a.startswith("--report-dir") for a in args) else [f"--report-dir={files['report_dir']}"]
            return [sys.executable, "-m", "pytest", "--target", "esp32p4", "--dut", "sim", "-p", "no:cacheprovider",
                    *report, *args]
        return [sys.executable, "-m", "host", *args]


def P(*args: str, names: str, fix: str, id: str, marks=()):  # noqa: A002 - pytest.param's own word
    return pytest.param(Row("pytest", args, names, fix), id=f"pytest-{id}", marks=marks)


def H(*args: str, names: str, fix: str, id: str, marks=()):  # noqa: A002
    return pytest.param(Row("host", args, names, fix), id=f"host-{id}", marks=marks)


ROWS = [
    # ---- pytest --target esp32p4: the HIL suite's options (exit 4, `ERROR: yolo11-hil: ...`)
    P("--model={truncated_espdl}", names="{truncated_espdl}", fix="re-export", id="model-truncated-espdl"),
    P("--model={text_espdl}", names="{text_espdl}", fix="check the path", id="model-text-named-espdl"),
    P("--model={text_pt}", names="{text_pt}", fix="pass the ultralytics .pt file itself", id="model-text-named-pt"),
    P("--model={truncated_pt}", names="{truncated_pt}", fix="pass the ultralytics .pt file itself",
      id="model-truncated-pt"),
    P("--model={missing_pt}", names="{missing_pt}", fix="check the path", id="model-missing-path"),
    P("--model={onnx_not_split}", names="{onnx_not_split}", fix="python -m host quantize", id="model-onnx-not-split"),
    P("--model={onnx_text}", names="{onnx_text}", fix="re-export", id="model-onnx-not-onnx"),
    P("--model={espdl64}", names="--imgsz 320", fix="pass --imgsz 64", id="model-espdl-other-imgsz"),
    P("--target", "esp32s3", "--model={espdl64}", names="tiny64.espdl", fix="run with --target esp32p4",
      id="model-espdl-other-target"),
    P("--model={regular_file}", names="{regular_file}", fix="give a .pt", id="model-unknown-extension"),
    P("--imgsz", "333", names="--imgsz 333", fix="use e.g. 320 or 640", id="imgsz-333"),
    P("--preset", "bogus", names="--preset 'bogus'", fix="choose one of int8", id="preset-bogus"),
    P("--score-thr", "0", names="--score-thr 0", fix="give a probability in (0, 1)", id="score-thr-0"),
    P("--score-thr", "1.5", names="--score-thr 1.5", fix="give a probability in (0, 1)", id="score-thr-1.5"),
    P("--nms-thr", "0", names="--nms-thr 0", fix="give an IoU in (0, 1]", id="nms-thr-0"),
    P("--top-k", "0", names="--top-k 0", fix="give 1..1000 boxes", id="top-k-0"),
    P("--iou-tol", "2", names="--iou-tol 2", fix="give an IoU in (0, 1]", id="iou-tol-2"),
    P("--bench-runs", "0", names="--bench-runs 0", fix="give at least 1", id="bench-runs-0"),
    P("--images={missing_dir}", names="--images {missing_dir}", fix="point it at a folder", id="images-missing"),
    P("--images={empty_dir}", names="--images {empty_dir}", fix="add some or point --images elsewhere",
      id="images-empty"),
    P("--calib={calib_empty}", names="{calib_empty}", fix="add at least", id="calib-empty"),
    P("--calib={missing_dir}", names="{missing_dir}", fix="pass --calib", id="calib-missing"),
    P("--report-dir={regular_file}/reports", names="--report-dir {regular_file}/reports",
      fix="pass a folder you can write to", id="report-dir-under-a-file"),
    P("--sim-faults=bogus", names="--sim-faults 'bogus'", fix="known: flip_chunk", id="sim-faults-bogus"),
    P("--sim-faults=slowdown=model:fast", names="--sim-faults 'slowdown=model:fast'", fix="e.g. model:1.05",
      id="sim-faults-bad-value"),
    P("--dut", "qemu", names="--dut qemu", fix="idf_tools.py install qemu-xtensa", id="dut-qemu-not-installed"),
    P("--dut", "espemu", names="--dut 'espemu'", fix="choose one of auto, board, sim", id="dut-unknown"),
    P("--preset", "mixed", "--qat-batch", "4", names="not --preset mixed", fix="use --preset qat or drop --qat-batch",
      id="qat-batch-with-preset-mixed"),
    P("--preset", "qat", "--qat-data={missing_dir}", names="--qat-data {missing_dir}", fix="python -m tools.dataset",
      id="qat-data-missing"),
    P("--preset", "qat", "--qat-lr", "0", names="--qat-lr 0", fix="give a positive learning rate", id="qat-lr-0"),
    # ---- python -m host quantize / analyse / reference (exit 2, `error: ...`)
    H("quantize", "{missing_pt}", "--out", "{out}", names="{missing_pt}", fix="check the path",
      id="quantize-missing-model"),
    H("quantize", "{text_pt}", "--out", "{out}", names="{text_pt}", fix="pass the ultralytics .pt file itself",
      id="quantize-text-pt"),
    H("quantize", "{fixture_pt}", "--imgsz", "333", "--out", "{out}", names="--imgsz 333", fix="use e.g. 320 or 640",
      id="quantize-imgsz-333"),
    H("quantize", "{fixture_pt}", "--preset", "bogus", "--out", "{out}", names="'bogus'", fix="choose from",
      id="quantize-preset-bogus"),
    H("quantize", "{onnx_not_split}", "--imgsz", "64", "--out", "{out}", names="{onnx_not_split}",
      fix="python -m host quantize", id="quantize-onnx-not-split"),
    H("quantize", "{fixture_pt}", "--calib", "{calib_empty}", "--out", "{out}", names="{calib_empty}",
      fix="add at least", id="quantize-calib-empty"),
    H("quantize", "{fixture_pt}", "--test-image", "{truncated_png}", "--out", "{out}", names="{truncated_png}",
      fix="pass a readable PNG or JPEG", id="quantize-truncated-test-image"),
    H("quantize", "{fixture_pt}", "--out", "{regular_file}/out", names="--out {regular_file}/out",
      fix="pass a folder you can write to", id="quantize-out-under-a-file"),
    H("quantize", "{fixture_pt}", "--preset", "int8", "--qat-lr", "1e-5", "--out", "{out}", names="--qat-lr",
      fix="use --preset qat", id="quantize-qat-lr-with-preset-int8"),
    H("quantize", "{fixture_pt}", "--preset", "qat", "--qat-epochs", "0", "--out", "{out}", names="--qat-epochs 0",
      fix="pass e.g. --qat-epochs 4", id="quantize-qat-epochs-0"),
    H("quantize", "{fixture_pt}", "--preset", "qat", "--qat-data", "{missing_dir}", "--out", "{out}",
      names="--qat-data {missing_dir}", fix="python -m tools.dataset", id="quantize-qat-data-missing"),
    H("recipes", "{fixture_pt}", "--recipes", "int8,fp16", "--out", "{out}", names="fp16",
      fix="choose from float,int8,mixed,tutorial,qat", id="recipes-unknown-recipe"),
    H("recipes", "{espdl64}", "--imgsz", "64", "--out", "{out}", names="{espdl64}",
      fix="give the .pt or split-head .onnx it came from", id="recipes-model-already-quantized"),
    H("recipes", "{missing_pt}", "--out", "{out}", names="{missing_pt}", fix="check the path",
      id="recipes-missing-model"),
    H("recipes", "{fixture_pt}", "--data", "{missing_dir}", "--out", "{out}", names="--data {missing_dir}",
      fix="point it at one", id="recipes-data-missing"),
    H("recipes", "{fixture_pt}", "--recipes", "float,int8", "--qat-lr", "1e-5", "--out", "{out}", names="--qat-lr",
      fix="add qat to --recipes", id="recipes-qat-flag-without-qat"),
    H("recipes", "{fixture_pt}", "--recipes", "int8,qat", "--qat-epochs", "0", "--out", "{out}",
      names="--qat-epochs 0", fix="pass e.g. --qat-epochs 4", id="recipes-qat-epochs-0"),
    H("analyse", "{missing_pt}", "--out", "{out}", names="{missing_pt}", fix="check the path",
      id="analyse-missing-model"),
    H("reference", "{missing_pt}", "--image", "{good_png}", names="{missing_pt}", fix="check the path",
      id="reference-missing-model"),
    H("reference", "{fixture_pt}", "--image", "{missing_png}", names="{missing_png}",
      fix="pass the path of a PNG or JPEG", id="reference-missing-image"),
    H("reference", "{fixture_pt}", "--image", "{truncated_png}", names="{truncated_png}",
      fix="pass a readable PNG or JPEG", id="reference-truncated-image"),
    H("reference", "{fixture_pt}", "--image", "{good_png}", "--preset", "bogus", names="'bogus'",
      fix="choose one of int8", id="reference-unknown-preset"),
    # ---- python -m host preprocess
    H("preprocess", "{truncated_png}", "--input-exponent", "-7", names="{truncated_png}",
      fix="pass a readable PNG or JPEG", id="preprocess-truncated-png"),
    H("preprocess", "{missing_png}", "--input-exponent", "-7", names="{missing_png}",
      fix="pass the path of a PNG or JPEG", id="preprocess-missing-file"),
    # ---- python -m host espdl
    H("espdl", "info", "{truncated_espdl}", names="{truncated_espdl}", fix="re-export", id="espdl-info-truncated"),
    H("espdl", "info", "{text_espdl}", names="{text_espdl}", fix="check the path", id="espdl-info-not-espdl"),
    H("espdl", "info", "{bad_pdl3}", names="{bad_pdl3}", fix="rebuild it with", id="espdl-info-bad-checksum"),
    H("espdl", "info", "{espdl64}", "--key", "zz", names="--key 'zz'", fix="32 hex digits", id="espdl-info-bad-key"),
    H("espdl", "selftest", "{truncated_espdl}", names="{truncated_espdl}", fix="re-export",
      id="espdl-selftest-truncated"),
    H("espdl", "selftest", "{bad_pdl3}", names="{bad_pdl3}", fix="rebuild it with", id="espdl-selftest-bad-checksum"),
    H("espdl", "selftest", "{espdl64}", "--key", "00112233", names="--key", fix="32 hex digits",
      id="espdl-selftest-short-key"),
    H("espdl", "run", "{text_espdl}", "--image", "{good_png}", names="{text_espdl}", fix="check the path",
      id="espdl-run-not-espdl"),
    H("espdl", "run", "{espdl64}", "--image", "{truncated_png}", names="{truncated_png}",
      fix="pass a readable PNG or JPEG", id="espdl-run-truncated-png"),
    H("espdl", "check", "{truncated_espdl}", names="{truncated_espdl}", fix="re-export", id="espdl-check-truncated"),
    H("espdl", "check", "{bad_pdl3}", names="{bad_pdl3}", fix="rebuild it with", id="espdl-check-bad-checksum"),
    H("espdl", "check", "{espdl64}", "--key", "xyz", names="--key 'xyz'", fix="32 hex digits",
      id="espdl-check-bad-key"),
    H("espdl", "pack", "{out}/models.bin", "yolo11n:{espdl64}", names="yolo11n:", fix="write e.g. yolo11n=model.espdl",
      id="espdl-pack-bad-name-file"),
    H("espdl", "pack", "{out}/models.bin", "yolo11n={missing_pt}", names="{missing_pt}", fix="give the path",
      id="espdl-pack-missing-file"),
    H("espdl", "pack", "{out}/models.bin", "yolo11n={text_espdl}", names="{text_espdl}", fix="check the path",
      id="espdl-pack-not-espdl"),
    # ---- python -m host firmware
    H("firmware", "partitions", "--config", "bogus", names="'bogus'", fix="known: rev1, uart, usj",
      id="firmware-unknown-config"),
    H("firmware", "plan", "--build-dir", "{missing_dir}", "--port", "/dev/null", names="{missing_dir}",
      fix="build the firmware first", id="firmware-missing-build-dir"),
    H("firmware", "plan", "--build-dir", "{fw_build}", names="firmware plan", fix="pass --port",
      id="firmware-plan-without-port"),
    H("firmware", "plan", "--build-dir", "{fw_build_broken}", "--port", "/dev/null", names="{fw_build_broken}",
      fix="rebuild the firmware", id="firmware-damaged-build-dir"),
    H("firmware", "plan", "--build-dir", "{fw_build}", "--port", "/dev/null", "--model-pack", "{missing_pack}",
      names="--model-pack {missing_pack}", fix="python -m host espdl pack", id="firmware-missing-model-pack"),
    H("firmware", "plan", "--build-dir", "{fw_build}", "--port", "/dev/null", "--model-pack", "{not_pdl3_pack}",
      names="{not_pdl3_pack}", fix="python -m host espdl pack", id="firmware-model-pack-not-pdl3"),
    # ---- python -m host latency
    H("latency", "create", "{missing_latency}", "--dir", "{out}", names="{missing_latency}",
      fix="pass the right path", id="latency-create-missing"),
    H("latency", "create", "{latency_not_json}", "--dir", "{out}", names="{latency_not_json}",
      fix="re-measure", id="latency-create-not-json"),
    H("latency", "gate", "{latency_no_windows}", "--dir", "{out}", names="{latency_no_windows}",
      fix="re-measure", id="latency-gate-malformed"),
    H("latency", "gate", "{missing_latency}", "--dir", "{out}", names="{missing_latency}",
      fix="pass the right path", id="latency-gate-missing"),
    H("latency", "create", "{latency_ok}", "--dir", "{regular_file}/baselines", names="{regular_file}/baselines",
      fix="check the path", id="latency-create-dir-under-a-file"),
    H("latency", "compare", "{latency_not_json}", "{missing_latency}", names="{latency_not_json}",
      fix="re-measure", id="latency-compare-not-json"),
    H("latency", "compare", "{missing_latency}", "{latency_not_json}", names="{missing_latency}",
      fix="pass the right path", id="latency-compare-missing"),
    # ---- python -m host itself
    H("bogus-command", names="'bogus-command'", fix="choose from", id="unknown-command"),
]


def _message_lines(entry: str, output: str) -> list[str]:
    if entry == "pytest":
        return [line for line in output.splitlines() if line.startswith("ERROR: ")]
    # HarnessError: `error: ...`; argparse: `python -m host[ sub]: error: ...`
    return [line for line in output.splitlines() if re.match(r"^(python -m host[\w -]*: )?error: ", line)]


def _run(argv: list[str], timeout: float) -> tuple[int | None, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update(PYTHONHASHSEED="0", YOLO_OFFLINE="1")
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the row's own process group: a run that started real work
        out, _ = proc.communicate()
        return None, out, time.monotonic() - started
    return proc.returncode, out, time.monotonic() - started


@pytest.mark.parametrize("row", ROWS)
def test_bad_input_ends_in_one_line_before_anything_starts(row: Row, bad_inputs: dict[str, str]):
    argv = row.argv(bad_inputs)
    names, fix = row.names.format(**bad_inputs), row.fix.format(**bad_inputs)
    code, output, seconds = _run(argv, timeout=6 * LIMIT_S)
    shown = f"$ {' '.join(argv[1:])}\n(exit {code}, {seconds:.1f} s)\n{output}"
    assert "Traceback" not in output, shown
    assert code == (4 if row.entry == "pytest" else 2), shown
    lines = _message_lines(row.entry, output)
    assert len(lines) == 1, f"expected one message line\n{shown}"
    line = lines[0]
    if row.entry == "pytest":
        assert line.startswith("ERROR: yolo11-hil: "), shown
    # the message is the run's last word: nothing continues it on further lines
    assert output.rstrip().splitlines()[-1] == line, f"the message continues past its line\n{shown}"
    assert names in line, f"the message does not name the bad input ({names!r})\n{shown}"
    assert fix in line, f"the message does not say the fix ({fix!r})\n{shown}"
    assert seconds < LIMIT_S, f"too slow: something started before the refusal\n{shown}"
