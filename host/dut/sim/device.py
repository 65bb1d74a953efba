"""The device side of the protocol in Python: what the harness firmware does, with the host int8 emulator.

It loads the same PDL3 model-partition image a board would get (verifying its sha256 as the
firmware does at boot), runs ESP-DL-exact preprocess, the .espdl in the integer emulator (not the
PPQ executor the reference uses, so a sim run compares two implementations), and ESP-DL-exact
postprocess. Timings come from `LatencyModel`, never from the host's clock. Faults from a
`FaultPlan` are injected at the byte, record and result level.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np

from host import compat
from host.errors import HarnessError
from host.protocol import Chunk, Record, RequestDecoder, UploadReceiver
from host.protocol import messages as m
from host.protocol.stream import BadFrame
from host.protocol.wire import MAX_CHUNK_PAYLOAD, encode_line
from host.dut.sim.faults import FaultPlan
from host.dut.sim.latency import LatencyModel, count_macs

MAX_IMAGE_BYTES = 1920 * 1080 * 3
WINDOW_MAX = 32
SIM_SOURCES = Path(__file__).resolve().parent


def sim_app_sha256() -> str:
    """The sim's "firmware" identity: a digest of its own source files."""
    digest = hashlib.sha256()
    for path in sorted(SIM_SOURCES.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class SimDevice:
    """Feed it the host's bytes; it writes the device's bytes through `write`."""

    def __init__(self, pack: bytes, target: str, write: Callable[[bytes], None], faults: FaultPlan | None = None,
                 seed: int = 0, rev: int = 100, model_name: str | None = None) -> None:
        from host.espdl import Emulator, load_bytes, read_pdl3

        self.target = target
        self.faults = faults or FaultPlan()
        self.rev = rev
        self._write = write
        self.noise = random.Random(seed)
        package = read_pdl3(pack, verify=True)  # a bad pack fails here, as the firmware refuses to boot it
        name = model_name or package.names()[0]
        self.model_name = name
        blob = package.get(name)
        payload_len = int.from_bytes(blob[8:12], "little")
        self.espdl_bytes = blob[: 16 + payload_len]  # the .espdl file as quantized, without pack padding
        self.pack_sha256 = package.sha256.hex()
        from host.espdl.check import check_bytes, errors

        problems = errors(check_bytes(self.espdl_bytes, target, compat.FIRMWARE_ESPDL_VERSION, partition_size=None))
        if problems:  # what a board would compute wrongly, the sim refuses to run
            raise HarnessError("model refused by `espdl check`: " + "; ".join(str(f) for f in problems))
        self.model = load_bytes(self.espdl_bytes)
        self.model_sha256 = hashlib.sha256(self.espdl_bytes).hexdigest()
        self.emulator = Emulator(self.model, target=target, espdl_version=compat.FIRMWARE_ESPDL_VERSION)
        vi = self.model.inputs[0]
        self.input_name, self.imgsz, self.input_exponent = vi.name, int(vi.shape[1]), vi.exponent
        self.latency = LatencyModel(target, self.imgsz, count_macs(self.model), seed=seed)
        self.app_sha256 = sim_app_sha256()
        self._reset_state()
        self.requests_seen: dict[str, int] = {}
        self.records_sent = 0
        self.chunks_seen = 0
        self.lines_seen = 0
        self.hung = False
        self.booted = False

    def _reset_state(self) -> None:
        self.decoder = RequestDecoder(max_payload=MAX_CHUNK_PAYLOAD)
        self.upload: UploadReceiver | None = None
        self.upload_request: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None  # tensors of the last detect
        self.next_upload_id = 1
        self.stream = 0

    # ------------------------------------------------------------------ output
    def send(self, body: dict[str, Any]) -> None:
        self.records_sent += 1
        line = encode_line(body)
        if self.faults.log_noise:
            self._write(b"I (%d) hil: heap check ok\n" % self.records_sent + b"W (1) partial log without end ")
        if self.faults.flip_record == self.records_sent:
            i = len(line) // 2
            line = line[:i] + bytes([line[i] ^ 0x20]) + line[i + 1:]
        if self.faults.truncate_record == self.records_sent:
            line = line[: len(line) // 2] + b"\n"
        self._write(line)

    def boot(self, reason: str = "poweron") -> None:
        self.booted = True
        self._write(b"ESP-ROM:esp32p4 (simulated)\nI (25) boot: sim DUT starting\n")
        self.send(m.boot_record(reason, self.app_sha256, "ok", self.model_sha256))

    # ------------------------------------------------------------------ input
    def feed(self, data: bytes) -> None:
        if not self.booted:  # the handshake: the host opened the port and is listening
            self.boot()
            return
        if self.hung:
            return
        for event in self.decoder.feed(data):
            if self.hung:
                return
            if isinstance(event, Chunk):
                self._on_chunk(event)
            elif isinstance(event, BadFrame):
                self._on_bad_frame(event)
            elif isinstance(event, Record):
                self._on_request(event.body)

    def _on_chunk(self, chunk: Chunk) -> None:
        self.chunks_seen += 1
        if self.faults.drop_chunk == self.chunks_seen:
            return
        if self.faults.flip_chunk == self.chunks_seen:
            if self.upload is not None:
                for rec in self.upload.on_bad_frame(chunk.upload_id, chunk.seq):
                    self.send(rec)
            return
        if self.upload is None:
            return
        for rec in self.upload.on_chunk(chunk):
            self.send(rec)
        if self.upload.complete:
            self._finish_upload()

    def _on_bad_frame(self, frame: BadFrame) -> None:
        if self.upload is not None and frame.upload_id is not None:
            for rec in self.upload.on_bad_frame(frame.upload_id, frame.seq):
                self.send(rec)
        elif frame.upload_id is None:
            self.send(m.error_record(0, m.E_BAD_CRC, frame.reason))

    def _on_request(self, body: dict[str, Any]) -> None:
        self.lines_seen += 1
        kind, req_id = body.get("t"), body.get("id", 0)
        if self.faults.garble_request == self.lines_seen:
            self.send(m.error_record(0, m.E_BAD_CRC, "request line failed its CRC"))
            return
        if not isinstance(req_id, int) or req_id < 1:
            self.send(m.error_record(0, m.E_BAD_REQUEST, "request has no valid id"))
            return
        if self.upload is not None:
            self.upload = None
            self.send(m.error_record(self.upload_request["id"], m.E_UPLOAD_ABORTED, "a new request arrived"))
        count = self.requests_seen[kind] = self.requests_seen.get(kind, 0) + 1
        if self.faults.hang == kind:
            self.hung = True
            return
        if self.faults.panic == kind:
            self._panic()
            return
        if self.faults.reboot_always == kind or (self.faults.reboot == kind and count == 1):
            self._reset_state()
            self.boot("sw_reset")
            return
        handler = getattr(self, f"_req_{kind}", None) if kind in m.REQUEST_TYPES else None
        if handler is None:
            self.send(m.error_record(req_id, m.E_UNKNOWN, f"unknown request {kind!r}"))
            return
        handler(body)

    def _panic(self) -> None:
        self._write(b"Guru Meditation Error: Core  0 panic'ed (Load access fault). Exception was unhandled.\n"
                    b"MEPC    : 0x4000abcd  RA      : 0x4000beef  SP      : 0x4ff3c120\n"
                    b"Backtrace: 0x4000abcd:0x4ff3c120 0x4000beef:0x4ff3c140 |<-CORRUPTED\n"
                    b"Rebooting...\n")
        self._reset_state()
        self.boot("panic")

    # ------------------------------------------------------------------ requests
    def _req_info(self, body: dict[str, Any]) -> None:
        sha = self.model_sha256 if not self.faults.wrong_model_sha else hashlib.sha256(b"other").hexdigest()
        outputs = [m.tensor_info(o.name, o.shape, o.exponent) for o in self.model.outputs]
        heap = {"internal_free": 301_000, "internal_min": 287_000, "internal_largest": 245_000,
                "spiram_free": 22_700_000, "spiram_min": 22_100_000, "spiram_largest": 22_000_000}
        self.send(m.info_record(
            body["id"], chip=self.target, rev=self.rev, cores=2, idf="sim", espdl=compat.FIRMWARE_ESPDL_VERSION,
            app_version="hil-sim", app_sha256=self.app_sha256, model_state="ok", model_name=self.model_name,
            model_sha256=sha, pack_sha256=self.pack_sha256,
            inputs=[m.tensor_info(self.input_name, self.model.inputs[0].shape, self.input_exponent)],
            outputs=outputs, heap=heap, max_image=MAX_IMAGE_BYTES, chunk_max=MAX_CHUNK_PAYLOAD,
            win_max=WINDOW_MAX, console="sim-pty", selftest="not_run"))

    def _req_selftest(self, body: dict[str, Any]) -> None:
        from host.espdl import selftest

        result = selftest(self.model, self.target, compat.FIRMWARE_ESPDL_VERSION)
        passed = result.ok and not self.faults.selftest_fail
        self.send(m.selftest_record(body["id"], passed, self._sample()["model"]))

    def _req_detect(self, body: dict[str, Any]) -> None:
        w, h, size = body.get("w"), body.get("h"), body.get("size")
        chunk, window = body.get("chunk", 4096), body.get("win", 16)
        if not all(isinstance(v, int) and v > 0 for v in (w, h, size, chunk, window)) or size != w * h * 3:
            self.send(m.error_record(body["id"], m.E_BAD_REQUEST, "detect needs w, h, size = w*h*3, chunk, win"))
            return
        if size > MAX_IMAGE_BYTES:
            self.send(m.error_record(body["id"], m.E_TOO_LARGE, f"image of {size} bytes > {MAX_IMAGE_BYTES}"))
            return
        chunk, window = min(chunk, MAX_CHUNK_PAYLOAD), min(window, WINDOW_MAX)
        upload_id = self.next_upload_id
        self.next_upload_id = self.next_upload_id % 255 + 1
        self.upload = UploadReceiver(upload_id, size, chunk)
        self.upload_request = body
        self.send(m.ready_record(body["id"], upload_id, chunk, window, self.upload.n))

    def _finish_upload(self) -> None:
        from host.protocol import crc32
        from host.reference.postprocess import postprocess
        from host.reference.preprocess import preprocess

        body, image = self.upload_request, bytes(self.upload.buffer)
        self.upload = None
        if crc32(image) != body.get("crc"):
            self.send(m.error_record(body["id"], m.E_IMAGE_CRC, "the image CRC does not match"))
            return
        rgb = np.frombuffer(image, dtype=np.uint8).reshape(body["h"], body["w"], 3)
        tensor, geometry = preprocess(rgb, self.imgsz, self.input_exponent, self.target)
        if self.faults.preprocess_offset:
            tensor = np.roll(tensor, 1, axis=2)
        outputs = self.emulator.run({self.input_name: tensor})
        outputs = {name: np.array(v) for name, v in outputs.items()}
        if self.faults.corrupt_output:
            out = outputs[self.faults.corrupt_output]
            flat = out.reshape(-1)
            flat[int(np.argmax(flat))] = min(127, int(flat.max()) + 1) if flat.max() < 127 else 126
        exponents = {o.name: o.exponent for o in self.model.outputs}
        post = postprocess(outputs, exponents, geometry, self.target, score_thr=body.get("score", 0.25),
                           nms_thr=body.get("nms", 0.7), top_k=body.get("topk", 10))
        boxes = [m.Box(b.category, b.score, *b.box) for b in post.boxes]
        if self.faults.perturb_boxes and boxes:
            b = boxes[0]
            boxes[0] = m.Box(b.category, b.score, b.x1 + 1, b.y1, b.x2, b.y2)
        self.last = {"input": tensor, "outputs": outputs, "exponents": exponents}
        us = self._sample()
        self.send(m.detect_record(body["id"], body["w"], body["h"], boxes, us["pre"], us["model"], us["post"]))

    def _req_dump(self, body: dict[str, Any]) -> None:
        if self.last is None:
            self.send(m.error_record(body["id"], m.E_NO_IMAGE, "dump needs a detect first"))
            return
        tensors = [(self.input_name, self.last["input"], self.input_exponent)]
        tensors += [(name, self.last["outputs"][name], self.last["exponents"][name])
                    for name in ("box0", "score0", "box1", "score1", "box2", "score2")]
        for name, array, exp in tensors:
            data = np.ascontiguousarray(array).tobytes()
            self.send(m.tensor_record(body["id"], name, str(array.dtype), array.shape, exp, data))
            for part in m.part_records(body["id"], name, data):
                self.send(part)
        self.send(m.dump_record(body["id"], [t[0] for t in tensors]))

    def _req_bench(self, body: dict[str, Any]) -> None:
        warmup, runs = body.get("warmup"), body.get("runs")
        if not (isinstance(warmup, int) and isinstance(runs, int) and 0 <= warmup <= 1000 and 1 <= runs <= 10000):
            self.send(m.error_record(body["id"], m.E_BAD_REQUEST, "bench needs 0 <= warmup <= 1000, 1 <= runs <= 10000"))
            return
        if self.last is None:
            self.send(m.error_record(body["id"], m.E_NO_IMAGE, "bench needs a detect first"))
            return
        self.stream += 1
        for i, row in enumerate(self.latency.sample(self.stream, runs)):
            self.send(m.run_record(body["id"], i, row["pre"], row["model"], row["post"]))
        self.send(m.bench_record(body["id"], warmup, runs))

    def _req_profile(self, body: dict[str, Any]) -> None:
        self.stream += 1
        layers = self.latency.profile(self.stream)
        op_types = {n.name: n.op_type for n in self.model.nodes}
        for i, (name, us) in enumerate(layers.items()):
            self.send(m.layer_record(body["id"], i, name, op_types[name], us))
        self.send(m.profile_record(body["id"], len(layers), sum(layers.values())))

    def _sample(self) -> dict[str, int]:
        self.stream += 1
        return self.latency.sample(self.stream)[0]
