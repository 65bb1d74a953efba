"""The firmware built on the host: every source against esp-dl 3.3.9, and the real app loop behind a pty.

firmware/host/CMakeLists.txt compiles every firmware source (firmware/main/*.cpp, firmware/components/**)
with -Wall -Wextra -Werror against esp-dl's real headers and the ESP-IDF stand-ins of firmware/host/include,
for esp32p4 and esp32s3 with the uart and usj consoles (sdkconfig.h generated from the firmware's own
defaults chain). It also links `yolo11_hil_host`: the unchanged firmware on ESP-IDF's "linux" target with
esp-dl's own sources (generic C kernels) and a stand-in for esp-dl's closed FbsModel library that serves a
fixed fake YOLO11 graph (firmware/host/src/fbs_model_host.cpp). The tests below run that app behind a pty,
send it the golden requests of fixtures/protocol and compare its records with the golden records, byte for
byte once the fields that are the host's own (listed in HOST_FIELDS, each with its reason) are replaced by
what they must be. They also pin the firmware defects of issue 16: the dump's input tensor (esp-dl's
greedy planner reuses the input block), dump after profile, the esp-dl pin and the model sha256.

Needs cmake and g++ (`.ci/run` installs them) and esp-dl 3.3.9's sources at ESPDL_PATH, by default
../shared/third_party/esp-dl-v3.3.9 next to the repository. The build goes to build/host-firmware
(HIL_HOST_BUILD_DIR to move it); a first build takes a few minutes on 2 cores, later runs are incremental.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import pty
import re
import select
import shutil
import subprocess
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from host.chip.postprocess import postprocess
from host.chip.preprocess import preprocess
from host.chip.releases import FIRMWARE_ESPDL_VERSION
from host.espdl.container import read_pdl3, write_edl2, write_pdl3
from host.firmware.partitions import partition_table
from host.protocol import messages as m
from host.protocol.device import DeviceBackend, DeviceService, Limits, StageUs
from host.protocol.stream import Record, RecordDecoder
from host.protocol.wire import Chunk, crc32, encode_chunk, encode_line

ROOT = Path(__file__).resolve().parents[3]
FIRMWARE = ROOT / "firmware"
FIXTURES = ROOT / "fixtures" / "protocol"
GOLDEN = {f["name"]: f for f in json.loads((FIXTURES / "golden.json").read_text())["frames"]}
ESPDL_PATH = Path(os.environ.get("ESPDL_PATH") or ROOT.parent / "shared" / "third_party" / "esp-dl-v3.3.9")
BUILD_DIR = Path(os.environ.get("HIL_HOST_BUILD_DIR") or ROOT / "build" / "host-firmware")
CONFIGS = [(t, c) for t in ("esp32p4", "esp32s3") for c in ("uart", "usj")]

# The host app's limits: the linux target's Kconfig defaults (firmware/main/Kconfig.projbuild) and the
# 131072-byte console buffer the firmware installs.
HOST_LIMITS = Limits(max_image=1228800, chunk_max=8192, window_max=16, rx_buffer=131072, upload_timeout_ms=3000)

# Fields of the golden records that the host app legitimately answers differently, per golden record, and
# why. Every other field must equal the golden value; these are replaced by what the host app must say
# (each test computes it), then the whole record is compared byte for byte.
_TIMES = "device-measured time (checked for type and sign instead)"
HOST_FIELDS: dict[str, dict[str, str]] = {
    "rec_boot": {
        "app_sha256": "the sha256 of the host executable (/proc/self/exe), as the chip reports its ELF's",
        "model_sha256": "the sha256 of the .espdl file this test packed (the golden frame has a placeholder)",
    },
    "rec_info": {
        "chip": "ESP-IDF's 'linux' target: the app runs on the host, not on an esp32p4",
        "rev": "no silicon revision on the host (esp_chip_info stand-in: 0)",
        "cores": "the linux target runs esp-dl single-core (CONFIG_FREERTOS_NUMBER_OF_CORES=1)",
        "idf": "the ESP-IDF release the stand-ins follow, marked -host",
        "app_version": "no PROJECT_VER or git describe in the host build: 'host'",
        "app_sha256": "the sha256 of the host executable",
        "model_sha256": "the sha256 of the .espdl file this test packed",
        "pack_sha256": "the PDL3 digest of the pack this test wrote",
        "heap": "the host heap stand-in's figures (checked for consistency instead)",
        "outputs": "the golden frame lists two of the six outputs; the device lists all six in map order "
                   "(the golden two must be among them, identical)",
    },
    "rec_selftest": {"us": _TIMES},
    "rec_detect": {
        "boxes": "the fake model's detections: checked against the host's ESP-DL postprocess reference",
        "us": _TIMES,
        "upload_us": _TIMES,
    },
    "rec_dump": {"tensors": "the golden frame lists three tensors; the device dumps the input and all six outputs"},
    "rec_run": {"pre": _TIMES, "model": _TIMES, "post": _TIMES},
    "rec_layer": {"name": "the fake graph's layer names", "type": "the fake graph's op types", "us": _TIMES},
    "rec_profile": {"layers": "the fake graph has 15 layers", "total_us": _TIMES},
    "rec_error": {"msg": "the golden message is made up to exercise escapes; the device's is checked against "
                         "the Python twin (host/protocol/device.py) byte for byte"},
}
PROGRESS_TYPES = {m.READY, m.ACK, m.NAK, m.TENSOR, m.PART, m.RUN, m.LAYER}


def _require_toolchain() -> None:
    if not (ESPDL_PATH / "idf_component.yml").is_file():
        pytest.skip(f"esp-dl 3.3.9 sources not found at {ESPDL_PATH} (set ESPDL_PATH)")
    if not shutil.which("cmake") or not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("no C++ toolchain: install g++ and cmake (apt-get install -y g++ cmake ninja-build)")


@dataclass
class HostBuild:
    dir: Path
    app: Path
    seconds: float
    log: str


@pytest.fixture(scope="module")
def host_build() -> HostBuild:
    """Configure and build firmware/host once (incremental; a file lock serialises parallel sessions)."""
    _require_toolchain()
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        generator = ["-G", "Ninja"] if shutil.which("ninja") and not (BUILD_DIR / "Makefile").exists() else []
        start = time.monotonic()
        conf = subprocess.run(["cmake", "-S", str(FIRMWARE / "host"), "-B", str(BUILD_DIR), *generator,
                               f"-DESPDL_PATH={ESPDL_PATH}", "-DCMAKE_BUILD_TYPE=Debug"],
                              capture_output=True, text=True, timeout=600)
        assert conf.returncode == 0, conf.stdout[-3000:] + conf.stderr[-3000:]
        build = subprocess.run(["cmake", "--build", str(BUILD_DIR), "--parallel", "2"],
                               capture_output=True, text=True, timeout=3600)
        seconds = time.monotonic() - start
    assert build.returncode == 0, build.stdout[-6000:] + build.stderr[-3000:]
    return HostBuild(BUILD_DIR, BUILD_DIR / "yolo11_hil_host", seconds, build.stdout)


# ------------------------------------------------------------------ the compile checks


@pytest.mark.slow
def test_every_firmware_source_compiles_for_each_target_and_console(host_build, record_property):
    """Every .cpp of firmware/main and firmware/components is compiled with -Werror for each configuration."""
    record_property("host_build_seconds", round(host_build.seconds, 1))
    print(f"host build: {host_build.seconds:.1f} s (incremental when {host_build.dir} already held a build)")
    commands = json.loads((host_build.dir / "compile_commands.json").read_text())
    by_config: dict[str, set[Path]] = {}
    for c in commands:
        target = re.search(r"CMakeFiles/([^/]+)\.dir/", c["output"] if "output" in c else c["command"])
        assert target, c
        by_config.setdefault(target.group(1), set()).add(Path(c["file"]).resolve())
        assert "-Werror" in c["command"] or target.group(1) == "espdl_host", c["command"]
    main = {p.resolve() for p in (FIRMWARE / "main").glob("*.cpp")}
    component_src = {p.resolve() for p in (FIRMWARE / "components").rglob("src/*.cpp")}
    component_test = {p.resolve() for p in (FIRMWARE / "components").rglob("test/*.cpp")}
    assert main and component_src and component_test
    for target, console in CONFIGS:
        assert by_config[f"fw_{target}_{console}"] == main | component_src, (target, console)
    assert by_config["fw_component_tests"] == component_test
    assert by_config["fw_idf6_paths"] == {(FIRMWARE / "components/hil_protocol/src/sha256_idf.cpp").resolve()}
    assert main | component_src <= by_config["yolo11_hil_host"]
    all_sources = {p.resolve() for p in FIRMWARE.rglob("*.cpp") if "host" not in p.relative_to(FIRMWARE).parts[:1]}
    assert all_sources == main | component_src | component_test, "a firmware source outside main/ and components/"


@pytest.mark.slow
@pytest.mark.parametrize("target,console", CONFIGS)
def test_generated_sdkconfig_follows_the_firmware_defaults(host_build, target, console):
    header = (host_build.dir / "config" / f"{target}_{console}" / "sdkconfig.h").read_text()
    assert f'#define CONFIG_IDF_TARGET "{target}"' in header
    assert f"#define CONFIG_IDF_TARGET_{target.upper()} 1" in header
    max_image = 6220800 if target == "esp32p4" else 1228800  # Kconfig.projbuild / sdkconfig.defaults.esp32s3
    assert f"#define CONFIG_HIL_MAX_IMAGE_BYTES {max_image}" in header
    assert "#define CONFIG_ESP_TASK_WDT_CHECK_IDLE_TASK_CPU0" not in header  # "=n" symbols are absent
    if console == "uart":
        assert "#define CONFIG_ESP_CONSOLE_UART 1" in header and "#define CONFIG_ESP_CONSOLE_UART_NUM 0" in header
        assert "#define CONFIG_ESP_CONSOLE_UART_BAUDRATE 2000000" in header
    else:
        assert "#define CONFIG_ESP_CONSOLE_USB_SERIAL_JTAG 1" in header
        assert "#define CONFIG_ESP_CONSOLE_UART 1" not in header
    assert "#define CONFIG_PIX_CVT_RGB888_TO_RGB888_SUPPORT 1" in header  # esp-dl's own Kconfig defaults


# ------------------------------------------------------------------ defects that need no build


def test_esp_dl_is_pinned_to_the_release_the_host_emulates():
    manifest = (FIRMWARE / "main" / "idf_component.yml").read_text()
    pins = re.findall(r'^\s*espressif/esp-dl:\s*\n\s*version:\s*"([^"]+)"', manifest, re.M)
    assert pins == [FIRMWARE_ESPDL_VERSION], f"esp-dl pin {pins}: pin exactly {FIRMWARE_ESPDL_VERSION}"


def test_s3_app_partition_has_margin_over_the_esp_dl_examples():
    """esp-dl's examples give the app 2000K on 8 MB boards; the harness app gets that plus 15 %."""
    parts = {p.name: p for p in partition_table("esp32s3", "uart")[0]}
    assert parts["factory"].size >= 2000 * 1024 * 1.15
    assert parts["factory"].offset % 0x10000 == 0 and parts["factory"].end <= parts["model"].offset


# ------------------------------------------------------------------ the app behind a pty

FAKE_MAGIC = b"hil-host-fake-yolo11/1"


def fake_espdl(imgsz: int = 640, length: int | None = None) -> bytes:
    """An EDL2 .espdl whose payload selects the host build's fake YOLO11 graph, `length` bytes in all."""
    payload = FAKE_MAGIC + f" imgsz={imgsz}\n".encode()
    if length is not None:
        assert length >= 16 + len(payload)
        payload += b"#" * (length - 16 - len(payload))
    return write_edl2(payload)


@dataclass
class HostApp:
    """The host app on a pty: requests in, records (with their raw bytes) and log text out."""

    proc: subprocess.Popen
    master: int
    stderr_path: Path
    decoder: RecordDecoder = field(default_factory=RecordDecoder)
    pending: list[Record] = field(default_factory=list)
    log: bytearray = field(default_factory=bytearray)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def _pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            data = os.read(self.master, 1 << 16)
        except OSError:
            data = b""
        if not data:
            raise AssertionError(f"the host app ended: {self.stderr()}\nlog: {bytes(self.log[-2000:])!r}")
        for ev in self.decoder.feed(data):
            if isinstance(ev, Record):
                self.pending.append(ev)
            else:
                self.log += getattr(ev, "text", b"") or getattr(ev, "raw", b"")

    def next(self, timeout: float = 30.0) -> Record:
        end = time.monotonic() + timeout
        while not self.pending:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no record within {timeout} s; log: {bytes(self.log[-2000:])!r}; "
                                     f"stderr: {self.stderr()}")
            self._pump(min(left, 0.5))
        return self.pending.pop(0)

    def until(self, pred: Callable[[dict], bool], timeout: float = 30.0) -> list[Record]:
        """Records up to and including the first one `pred` accepts."""
        out = []
        while True:
            rec = self.next(timeout)
            out.append(rec)
            if pred(rec.body):
                return out

    def final(self, req_id: int, timeout: float = 30.0) -> list[Record]:
        """Progress records and the final record of request `req_id`."""
        return self.until(lambda b: b.get("id") == req_id and b["t"] not in PROGRESS_TYPES, timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-3000:] if self.stderr_path.exists() else ""


@contextlib.contextmanager
def run_app(build: HostBuild, tmp_path: Path, pack: bytes | None, env: dict[str, str] | None = None):
    """Start the host app with `pack` as its model partition (none: no partition) on a fresh pty."""
    master, slave = pty.openpty()
    tty.setraw(slave)  # until the firmware's console driver install takes over the terminal
    full_env = dict(os.environ)
    full_env.pop("HIL_HOST_PARTITIONS", None)
    if pack is not None:
        path = tmp_path / "model_partition.bin"
        path.write_bytes(pack)
        full_env["HIL_HOST_PARTITIONS"] = f"model={path}"
    full_env.update(env or {})
    stderr_path = tmp_path / "host_app.stderr"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen([str(build.app)], stdin=slave, stdout=slave, stderr=err, env=full_env,
                                close_fds=True)
    os.close(slave)
    app = HostApp(proc, master, stderr_path)
    try:
        yield app
    finally:
        os.close(master)  # the console hangs up: the app exits on its own
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def line_of(rec: Record) -> bytes:
    """The record's wire bytes with the console's CR LF (CONFIG_NEWLIB_STDOUT_LINE_ENDING_CRLF) as LF."""
    assert rec.raw.endswith(b"\r\n"), rec.raw[-10:]
    return rec.raw[:-2] + b"\n"


def golden(name: str) -> dict[str, Any]:
    return json.loads(json.dumps(GOLDEN[name]["value"]))


def golden_request(name: str) -> bytes:
    return (FIXTURES / GOLDEN[name]["file"]).read_bytes()


def assert_golden(rec: Record, frame: str, /, **host_values: Any) -> None:
    """The record equals golden `frame` byte for byte once the HOST_FIELDS given here are replaced."""
    expected = golden(frame)
    assert list(rec.body) == list(expected), f"{frame}: field order {list(rec.body)} != {list(expected)}"
    for key, value in host_values.items():
        assert key in HOST_FIELDS.get(frame, {}), f"{frame}.{key} is not a documented host difference"
        expected[key] = value
    want = encode_line(expected)
    assert line_of(rec) == want, f"{frame}:\n device {line_of(rec)!r}\n expect {want!r}"


class TwinBackend(DeviceBackend):
    """The minimum the Python twin needs to answer errors: no model work, a manual clock."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.clock_us = 0

    def now_us(self) -> int:
        return self.clock_us

    def send(self, line: bytes) -> None:
        self.sent.append(line)

    def info(self) -> dict:
        return dict(chip="twin", rev=0, cores=0, idf="", espdl="", app_version="", app_sha256="", model_state="ok",
                    model_name="", model_sha256="", pack_sha256="", inputs=[], outputs=[],
                    heap={k: 0 for k in m.HEAP_FIELDS}, console="twin", selftest="not_run")

    def model_error(self):
        return None

    def detect(self, image, params):
        return [], StageUs()

    def rerun(self):
        return StageUs()

    def forget_image(self) -> None:
        pass

    def selftest(self):
        return True, 0

    def profile(self):
        return [], 0

    def tensors(self):
        return []


def twin_errors(data: bytes, idle_us: int = 0) -> list[bytes]:
    """The error records the Python twin (host/protocol/device.py) sends for these bytes on a fresh device,
    then after `idle_us` without input."""
    backend = TwinBackend()
    service = DeviceService(backend, HOST_LIMITS)
    service.feed(data)
    backend.clock_us += idle_us
    service.poll()
    return [line for line in backend.sent if b'"t":"error"' in line]


def request(body: dict[str, Any]) -> bytes:
    return m.encode_request(body)


def send_image(app: HostApp, ready: dict, image: bytes, corrupt_seq: int | None = None) -> list[Record]:
    """Send every chunk within the window; corrupt chunk `corrupt_seq` once. Returns the records seen."""
    up, size, n, window = ready["up"], ready["chunk"], ready["n"], ready["win"]
    seen: list[Record] = []
    acked = 0
    seq = 0
    while seq < n:
        while seq - acked >= window:
            rec = app.next(10)
            seen.append(rec)
            if rec.body["t"] == "ack":
                acked = max(acked, rec.body["next"])
        frame = bytearray(encode_chunk(Chunk(up, seq, image[seq * size:(seq + 1) * size])))
        if seq == corrupt_seq:
            frame[20] ^= 0x40  # payload byte: the chunk CRC fails, the header still names seq
            app.send(bytes(frame))
            got = app.until(lambda b: b["t"] != "ack", 10)  # acks of earlier chunks, then the NAK
            seen += got
            acked = max([acked] + [r.body["next"] for r in got if r.body["t"] == "ack"])
            assert got[-1].body["t"] == "nak", got[-1].body
            corrupt_seq = None
            continue  # resend it intact
        app.send(bytes(frame))
        seq += 1
    return seen


def tensors_of(records: list[Record]) -> dict[str, tuple[dict, np.ndarray]]:
    """Reassemble the dumped tensors (name -> tensor record, int8 array), checking size and crc."""
    out: dict[str, tuple[dict, bytearray]] = {}
    for rec in records:
        b = rec.body
        if b["t"] == "tensor":
            out[b["name"]] = (b, bytearray())
        elif b["t"] == "part":
            head, data = out[b["name"]]
            assert b["off"] == len(data)
            data += base64.b64decode(b["data"])
    result = {}
    for name, (head, data) in out.items():
        assert len(data) == head["size"] and crc32(bytes(data)) == head["crc"], name
        result[name] = (head, np.frombuffer(bytes(data), dtype=np.int8).reshape(head["shape"]))
    return result


def fake_model_outputs(model_input: np.ndarray) -> dict[str, np.ndarray]:
    """The fake graph of firmware/host/src/fbs_model_host.cpp on an int8 NHWC input, in numpy."""
    x = model_input[0].astype(np.int16)
    size = x.shape[0]
    outs = {}
    for k, stride in enumerate((8, 16, 32)):
        o = size // stride
        hot = np.clip(x[::stride, ::stride] - 100, -128, 127)
        pool = x.reshape(o, stride, o, stride, 3).max(axis=(1, 3))
        box = np.zeros((o, o, 64), np.int16)
        box[..., :3] = pool
        score = np.full((o, o, 80), -128, np.int16)
        score[..., :3] = hot
        outs[f"box{k}"], outs[f"score{k}"] = box[None].astype(np.int8), score[None].astype(np.int8)
    return outs


FAKE_EXPONENTS = {"box0": -3, "box1": -3, "box2": -3, "score0": -2, "score1": -2, "score2": -2}


@pytest.mark.slow
def test_host_app_answers_the_golden_requests_like_the_golden_frames(host_build, tmp_path):
    espdl = fake_espdl(640)
    pack = write_pdl3({"yolo11n.espdl": espdl})
    app_sha = hashlib.sha256(host_build.app.read_bytes()).hexdigest()
    model_sha = hashlib.sha256(espdl).hexdigest()
    pack_sha = read_pdl3(pack).sha256.hex()
    image = bytes((i * 13 + 1) & 0xFF for i in range(640 * 480 * 3))  # tools/make_golden_frames.py's image
    detect_req = golden_request("req_detect")
    assert detect_req == request(golden("req_detect")) and golden("req_detect")["crc"] == crc32(image)

    with run_app(host_build, tmp_path, pack) as app:
        # boot: unprompted, after the model was verified and loaded
        assert_golden(app.next(), "rec_boot", app_sha256=app_sha, model_sha256=model_sha)

        # selftest: Model::test() on the fake graph's embedded test values (esp-dl's kernels vs a reference)
        app.send(golden_request("req_selftest"))
        rec = app.final(2)[-1]
        assert rec.body["ok"] is True and isinstance(rec.body["us"], int) and rec.body["us"] >= 0
        assert_golden(rec, "rec_selftest", us=rec.body["us"])

        # info (after the selftest, so "selftest":"pass" as in the golden frame)
        app.send(golden_request("req_info"))
        rec = app.final(1)[-1]
        info = rec.body
        heap = info["heap"]
        assert list(heap) == list(golden("rec_info")["heap"]) and all(isinstance(v, int) for v in heap.values())
        assert heap["internal_min"] <= heap["internal_free"] and heap["spiram_min"] <= heap["spiram_free"]
        assert heap["spiram_free"] < 32 << 20  # esp-dl's tensors live in the (stand-in) PSRAM
        outputs = {o["name"]: o for o in info["outputs"]}
        assert list(outputs) == sorted(outputs) == ["box0", "box1", "box2", "score0", "score1", "score2"]
        for o in golden("rec_info")["outputs"]:
            assert outputs[o["name"]] == o
        assert info["espdl"] == FIRMWARE_ESPDL_VERSION  # read from esp-dl's manifest at build time
        assert_golden(rec, "rec_info", chip="linux", rev=0, cores=1, idf="v5.5.1-host", app_version="host",
                      app_sha256=app_sha, model_sha256=model_sha, pack_sha256=pack_sha, heap=heap,
                      outputs=info["outputs"])

        # errors: each record equals the Python twin's for the same bytes
        bad_crc = bytearray(golden_request("req_info"))
        bad_crc[-3] = ord("0") if bad_crc[-3] != ord("0") else ord("1")
        errors = [bytes(bad_crc),                                               # bad_crc
                  request({"t": "info"}),                                       # bad_request (no id)
                  request({"t": "nope", "id": 9}),                              # unknown_request
                  request({"t": "dump", "id": 10}),                             # no_image
                  request({"t": "bench", "id": 11}),                            # no_image
                  request({"t": "bench", "id": 12, "runs": 0}),                 # bad_request
                  request({**golden("req_detect"), "id": 13, "size": 7}),       # bad_request
                  request({**golden("req_detect"), "id": 14, "w": 1280, "h": 960, "size": 1280 * 960 * 3})]  # too_large
        for data in errors:
            app.send(data)
            assert [line_of(app.next())] == twin_errors(data), data
        # bad_json: same code and id; the message text differs between the twins (C++ "not an object",
        # Python "record body is not an object with a string "t" field"), outside this scope.
        not_an_object = b"@HIL [1,2] " + b"%08x\n" % crc32(b"[1,2]")
        app.send(not_an_object)
        twin = json.loads(twin_errors(not_an_object)[0][5:-10])
        body = app.next().body
        assert (body["t"], body["id"], body["code"]) == (twin["t"], twin["id"], twin["code"])
        assert twin["code"] == "bad_json"
        app.send(bytes(bad_crc))
        rec = app.next()
        assert_golden(rec, "rec_error", msg=rec.body["msg"])

        # 16 uploads: aborted by a request, dropped for a bad image CRC, timed out. The golden detect that
        # follows gets upload id 17, as in rec_ready.
        for _ in range(14):
            app.send(detect_req)
            assert app.next().body["t"] == "ready"
            app.send(golden_request("req_dump"))
            got = [line_of(app.next()), line_of(app.next())]  # upload_aborted for 3, no_image for 4
            assert got == twin_errors(detect_req + golden_request("req_dump"))
        wrong_crc = request({**golden("req_detect"), "crc": crc32(image) ^ 1})
        app.send(wrong_crc)
        send_image(app, app.next().body, image)
        rec = app.until(lambda b: b["t"] == "error")[-1]  # image_crc, after the acks
        twin_chunks = b"".join(encode_chunk(Chunk(1, i, image[i * 4096:(i + 1) * 4096])) for i in range(225))
        assert [line_of(rec)] == twin_errors(wrong_crc + twin_chunks)
        app.send(detect_req)
        assert app.next().body["t"] == "ready"
        rec = app.next(timeout=10)  # no chunk: the upload times out after 3 s
        assert [line_of(rec)] == twin_errors(detect_req, idle_us=3_100_000)

        # the upload: ready, a NAK for a corrupted chunk, acks, then the detect record
        app.send(detect_req)
        ready = app.next()
        assert_golden(ready, "rec_ready")
        seen = send_image(app, ready.body, image, corrupt_seq=7)
        naks = [r for r in seen if r.body["t"] == "nak"]
        assert len(naks) == 1
        assert_golden(naks[0], "rec_nak")
        seen += app.final(3)
        acks = [r for r in seen if r.body["t"] == "ack"]
        assert [a.body["next"] for a in acks] == list(range(1, 226))
        assert_golden(acks[41], "rec_ack")
        detect = seen[-1]
        assert detect.body["t"] == "detect", detect.body
        us = detect.body["us"]
        assert list(us) == ["pre", "model", "post"] and all(isinstance(v, int) and v >= 0 for v in us.values())
        assert isinstance(detect.body["upload_us"], int) and detect.body["upload_us"] > 0

        # dump: the input is what preprocess built (defect 1), the outputs the fake graph of that input
        app.send(golden_request("req_dump"))
        records = app.final(4)
        dumped = tensors_of(records)
        names = ["images", "box0", "score0", "box1", "score1", "box2", "score2"]
        assert list(dumped) == names
        assert_golden(records[-1], "rec_dump", tensors=names)
        rgb = np.frombuffer(image, np.uint8).reshape(480, 640, 3)
        # The linux target has no P4 round-half-even (CONFIG_ROUND_HALF_EVEN_ENABLED=0): S3 rounding.
        reference_input, geometry = preprocess(rgb, 640, -7, "esp32s3")
        assert np.array_equal(dumped["images"][1], reference_input), "dump returned another input than preprocess built"
        expected = {"images": reference_input, **fake_model_outputs(reference_input)}
        exponents = {"images": -7, **FAKE_EXPONENTS}
        want = []
        for name in names:  # the same tensor and part records the Python builders write
            data = expected[name].tobytes()
            want.append(encode_line(m.tensor_record(4, name, "int8", expected[name].shape, exponents[name], data)))
            want += [encode_line(p) for p in m.part_records(4, name, data)]
        assert [line_of(r) for r in records[:-1]] == want
        assert list(records[0].body) == list(golden("rec_tensor")) and list(records[1].body) == list(golden("rec_part"))

        # the boxes are esp-dl's yolo11PostProcessor on those outputs: the host reference must agree exactly
        outputs = {k: v for k, v in expected.items() if k != "images"}
        ref = postprocess(outputs, FAKE_EXPONENTS, geometry, "esp32s3", 0.25, 0.7, 10)
        expected_boxes = [[b.category, b.score, b.x1, b.y1, b.x2, b.y2] for b in ref.boxes]
        assert len(expected_boxes) == 10
        assert_golden(detect, "rec_detect", boxes=expected_boxes, us=us, upload_us=detect.body["upload_us"])

        # bench on the last image; the dump after it still holds the detect's tensors
        app.send(golden_request("req_bench"))
        records = app.final(5)
        runs = [r for r in records if r.body["t"] == "run"]
        assert [r.body["i"] for r in runs] == list(range(10))
        assert_golden(runs[0], "rec_run", **{k: runs[0].body[k] for k in ("pre", "model", "post")})
        assert_golden(records[-1], "rec_bench")
        app.send(request({"t": "dump", "id": 15}))
        assert np.array_equal(tensors_of(app.final(15))["images"][1], reference_input)

        # profile; afterwards dump answers no_image (defect 2), as docs/protocol.md and the twin say
        app.send(golden_request("req_profile"))
        records = app.final(6)
        layers = [r for r in records if r.body["t"] == "layer"]
        assert [r.body["i"] for r in layers] == list(range(15))
        assert {r.body["type"] for r in layers} == {"MaxPool", "Sub", "Pad"}
        assert_golden(layers[0], "rec_layer", name="/pick8/MaxPool", type="MaxPool", us=layers[0].body["us"])
        assert_golden(records[-1], "rec_profile", layers=15, total_us=records[-1].body["total_us"])
        dump_after_profile = request({"t": "dump", "id": 16})
        app.send(dump_after_profile)
        assert [line_of(app.next())] == twin_errors(dump_after_profile)

        # selftest overwrites the tensors too
        app.send(request({**golden("req_detect"), "id": 17}))
        send_image(app, app.next().body, image)
        assert app.final(17)[-1].body["t"] == "detect"
        app.send(request({"t": "selftest", "id": 18}))
        assert app.final(18)[-1].body["ok"] is True
        dump_after_selftest = request({"t": "dump", "id": 19})
        app.send(dump_after_selftest)
        assert [line_of(app.next())] == twin_errors(dump_after_selftest)
    assert app.proc.returncode == 0, app.stderr()  # the console hung up: a clean exit


@pytest.mark.slow
@pytest.mark.parametrize("length", [96, 97, 104, 111])
def test_model_sha256_is_the_espdl_file_hash_for_any_length(host_build, tmp_path, length):
    """PDL3 pads each model to 16 bytes; the device hashes the .espdl itself, as the host and the sim do."""
    espdl = fake_espdl(64, length)
    assert len(espdl) == length
    pack = write_pdl3({"yolo11n.espdl": espdl})
    entry = read_pdl3(pack).models[0]
    assert len(entry.data) % 16 == 0 and entry.data[:length] == espdl  # the padded pack entry
    with run_app(host_build, tmp_path, pack) as app:
        boot = app.next().body
        assert boot["model"] == "ok"
        assert boot["model_sha256"] == hashlib.sha256(espdl).hexdigest()
        if length % 16:
            assert boot["model_sha256"] != hashlib.sha256(entry.data).hexdigest()
        app.send(request({"t": "info", "id": 1}))
        info = app.final(1)[-1].body
        assert info["model_sha256"] == boot["model_sha256"]
        assert info["inputs"] == [m.tensor_info("images", [1, 64, 64, 3], -7)]


@pytest.mark.slow
def test_model_errors_without_a_model_partition_or_with_a_foreign_model(host_build, tmp_path):
    with run_app(host_build, tmp_path, None) as app:
        boot = app.next().body
        assert (boot["model"], boot["model_sha256"]) == ("missing", "")
        app.send(golden_request("req_detect"))
        err = app.next().body
        assert (err["t"], err["id"], err["code"]) == ("error", 3, "model_missing")
        assert "no data partition labelled 'model'" in err["msg"]
    foreign = write_pdl3({"yolo11n.espdl": write_edl2(b"not the host build's fake model")})
    with run_app(host_build, tmp_path, foreign) as app:
        boot = app.next().body
        assert boot["model"] == "load_failed"
        app.send(golden_request("req_selftest"))
        err = app.next().body
        assert (err["t"], err["id"], err["code"]) == ("error", 2, "model_load")
