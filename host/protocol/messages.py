"""The protocol's vocabulary: request and record builders for both ends, and typed views of results.

Builders return plain dicts in the field order docs/protocol.md lists (the canonical encoding keeps
that order, so golden frames pin it). The device-side builders mirror
firmware/components/hil_protocol/include/hil_protocol/records.hpp one to one.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from host.chip.detection import DEFAULT_THRESHOLDS, Box
from host.protocol.wire import MAX_REQUEST_LINE, PROTOCOL_VERSION, crc32, encode_line, float32

# Request types (host -> device).
INFO, SELFTEST, DETECT, DUMP, BENCH, PROFILE = "info", "selftest", "detect", "dump", "bench", "profile"
REQUEST_TYPES = (INFO, SELFTEST, DETECT, DUMP, BENCH, PROFILE)

# Record types (device -> host) that are not the final answer to a request.
BOOT, READY, ACK, NAK, TENSOR, PART, RUN, LAYER, ERROR = (
    "boot", "ready", "ack", "nak", "tensor", "part", "run", "layer", "error")

# Error codes (record "error", field "code").
E_BAD_CRC = "bad_crc"  # a request line failed its CRC
E_BAD_JSON = "bad_json"  # a request line is not a JSON object with "t"
E_BAD_REQUEST = "bad_request"  # a known request with missing or out-of-range fields
E_UNKNOWN = "unknown_request"  # "t" names no request
E_TOO_LARGE = "too_large"  # image larger than the firmware's maximum
E_UPLOAD_TIMEOUT = "upload_timeout"  # no valid chunk for the upload timeout
E_UPLOAD_ABORTED = "upload_aborted"  # a new request arrived during an upload
E_IMAGE_CRC = "image_crc"  # all chunks arrived but the whole-image CRC differs
E_NO_IMAGE = "no_image"  # dump/bench before any successful detect
E_MODEL_MISSING = "model_missing"  # no model partition, or it holds no PDL3 pack
E_MODEL_SHA256 = "model_sha256"  # the pack's stored sha256 does not match its bytes
E_MODEL_LOAD = "model_load"  # esp-dl could not load or build the model
E_NO_MEMORY = "no_memory"  # an allocation failed
E_BUSY = "busy"  # a queued detect while the device already holds its `queue` images (protocol 2)
ERROR_CODES = (E_BAD_CRC, E_BAD_JSON, E_BAD_REQUEST, E_UNKNOWN, E_TOO_LARGE, E_UPLOAD_TIMEOUT,
               E_UPLOAD_ABORTED, E_IMAGE_CRC, E_NO_IMAGE, E_MODEL_MISSING, E_MODEL_SHA256,
               E_MODEL_LOAD, E_NO_MEMORY, E_BUSY)

#: Images a protocol-2 device holds for queued detects: one computing, one uploading or waiting.
QUEUE_DEPTH = 2

DUMP_PART_BYTES = 3072  # raw bytes per "part" record (4096 base64 characters)
STAGES = ("pre", "model", "post")


# ---------------------------------------------------------------- requests (host side builds)

def request(kind: str, req_id: int, **fields: Any) -> dict[str, Any]:
    """A request dict: {"t": kind, "id": req_id, **fields}."""
    if not 1 <= req_id <= 0x7FFFFFFF:
        raise ValueError("request id must be 1..2^31-1")
    return {"t": kind, "id": req_id, **fields}


def encode_request(body: dict[str, Any]) -> bytes:
    """One request line, checked against the device's request line limit."""
    return encode_line(body, MAX_REQUEST_LINE)


def detect_request(req_id: int, width: int, height: int, image: bytes, *, chunk: int = 4096,
                   window: int = 16, score_thr: float = DEFAULT_THRESHOLDS.score_thr,
                   nms_thr: float = DEFAULT_THRESHOLDS.nms_thr, top_k: int = DEFAULT_THRESHOLDS.top_k,
                   queue: bool = False) -> dict[str, Any]:
    """Ask the device to receive an RGB888 image (then detect on it). Thresholds are float32.

    queue=True (protocol 2) makes it a queued detect: the device takes the upload while it still computes an
    earlier queued image, and answers each queued detect in request order once it has run.
    """
    if len(image) != width * height * 3:
        raise ValueError(f"RGB888 image of {width}x{height} needs {width * height * 3} bytes, got {len(image)}")
    body = request(DETECT, req_id, w=width, h=height, fmt="rgb888", size=len(image), crc=crc32(image),
                   chunk=chunk, win=window, score=float32(score_thr), nms=float32(nms_thr), topk=top_k)
    if queue:
        body["queue"] = True
    return body


def bench_request(req_id: int, warmup: int, runs: int) -> dict[str, Any]:
    return request(BENCH, req_id, warmup=warmup, runs=runs)


# ---------------------------------------------------------------- records (device side builds)

def boot_record(reason: str, app_sha256: str, model_state: str, model_sha256: str) -> dict[str, Any]:
    """Printed once per boot, unprompted: the host learns the device (re)started."""
    return {"t": BOOT, "proto": PROTOCOL_VERSION, "reason": reason, "app_sha256": app_sha256,
            "model": model_state, "model_sha256": model_sha256}


def tensor_info(name: str, shape: Sequence[int], exponent: int, dtype: str = "int8") -> dict[str, Any]:
    """How "info" describes a model input or output."""
    return {"name": name, "dtype": dtype, "shape": list(shape), "exp": exponent}


HEAP_FIELDS = ("internal_free", "internal_min", "internal_largest", "spiram_free", "spiram_min", "spiram_largest")


def info_record(req_id: int, *, chip: str, rev: int, cores: int, idf: str, espdl: str, app_version: str,
                app_sha256: str, model_state: str, model_name: str, model_sha256: str, pack_sha256: str,
                inputs: Sequence[dict[str, Any]], outputs: Sequence[dict[str, Any]], heap: dict[str, int],
                max_image: int, chunk_max: int, win_max: int, queue: int, console: str,
                selftest: str) -> dict[str, Any]:
    """Everything a result's provenance needs: chip and revision, versions, app and model identity, memory.

    model_sha256 is the sha256 of the .espdl file inside the pack (the host's artifact id);
    pack_sha256 is the PDL3 header digest that esp-dl verified at boot. queue: the images the device holds
    for queued detects (protocol 2; 2 = pipelined: one computing while the next uploads).
    """
    return {"t": INFO, "id": req_id, "ok": True, "proto": PROTOCOL_VERSION, "chip": chip, "rev": rev,
            "cores": cores, "idf": idf, "espdl": espdl, "app_version": app_version, "app_sha256": app_sha256,
            "model": model_state, "model_name": model_name, "model_sha256": model_sha256,
            "pack_sha256": pack_sha256, "inputs": list(inputs), "outputs": list(outputs),
            "heap": {k: int(heap[k]) for k in HEAP_FIELDS}, "max_image": max_image, "chunk_max": chunk_max,
            "win_max": win_max, "queue": queue, "console": console, "selftest": selftest}


def ready_record(req_id: int, upload_id: int, chunk: int, window: int, chunks: int) -> dict[str, Any]:
    return {"t": READY, "id": req_id, "up": upload_id, "chunk": chunk, "win": window, "n": chunks}


def ack_record(upload_id: int, next_seq: int) -> dict[str, Any]:
    """All chunks below `next_seq` have arrived."""
    return {"t": ACK, "up": upload_id, "next": next_seq}


def nak_record(upload_id: int, seq: int) -> dict[str, Any]:
    """Chunk `seq` arrived corrupted or was skipped: send it again."""
    return {"t": NAK, "up": upload_id, "seq": seq}


def error_record(req_id: int, code: str, message: str) -> dict[str, Any]:
    """The final answer to a failed request (req_id 0 when the request itself was unreadable)."""
    return {"t": ERROR, "id": req_id, "code": code, "msg": message}


def box_to_wire(box: Box) -> list[Any]:
    return [box.category, float32(box.score), box.x1, box.y1, box.x2, box.y2]


def box_from_wire(item: Sequence[Any]) -> Box:
    cat, score, x1, y1, x2, y2 = item
    return Box(int(cat), float32(float(score)), int(x1), int(y1), int(x2), int(y2))


def detect_record(req_id: int, width: int, height: int, boxes: Iterable[Box], pre_us: int,
                  model_us: int, post_us: int, upload_us: int = 0) -> dict[str, Any]:
    """upload_us: from sending "ready" to the last chunk, on the device clock (measures the link)."""
    return {"t": DETECT, "id": req_id, "ok": True, "w": width, "h": height,
            "boxes": [box_to_wire(b) for b in boxes], "us": {"pre": pre_us, "model": model_us, "post": post_us},
            "upload_us": upload_us}


def tensor_record(req_id: int, name: str, dtype: str, shape: Sequence[int], exponent: int,
                  data: bytes) -> dict[str, Any]:
    """Announces one dumped tensor; its bytes follow in "part" records."""
    parts = (len(data) + DUMP_PART_BYTES - 1) // DUMP_PART_BYTES
    return {"t": TENSOR, "id": req_id, "name": name, "dtype": dtype, "shape": list(shape), "exp": exponent,
            "size": len(data), "crc": crc32(data), "parts": parts}


def part_records(req_id: int, name: str, data: bytes) -> list[dict[str, Any]]:
    return [{"t": PART, "id": req_id, "name": name, "off": off,
             "data": base64.b64encode(data[off:off + DUMP_PART_BYTES]).decode("ascii")}
            for off in range(0, len(data), DUMP_PART_BYTES)]


def dump_record(req_id: int, names: Sequence[str]) -> dict[str, Any]:
    return {"t": DUMP, "id": req_id, "ok": True, "tensors": list(names)}


def run_record(req_id: int, index: int, pre_us: int, model_us: int, post_us: int) -> dict[str, Any]:
    return {"t": RUN, "id": req_id, "i": index, "pre": pre_us, "model": model_us, "post": post_us}


def bench_record(req_id: int, warmup: int, runs: int) -> dict[str, Any]:
    return {"t": BENCH, "id": req_id, "ok": True, "warmup": warmup, "runs": runs}


def layer_record(req_id: int, index: int, name: str, op_type: str, us: int) -> dict[str, Any]:
    return {"t": LAYER, "id": req_id, "i": index, "name": name, "type": op_type, "us": us}


def profile_record(req_id: int, layers: int, total_us: int) -> dict[str, Any]:
    return {"t": PROFILE, "id": req_id, "ok": True, "layers": layers, "total_us": total_us}


def selftest_record(req_id: int, passed: bool, us: int) -> dict[str, Any]:
    """Model::test() verdict: the embedded test inputs gave the embedded test outputs bit-exactly."""
    return {"t": SELFTEST, "id": req_id, "ok": passed, "us": us}


# ---------------------------------------------------------------- typed views (host side reads)

@dataclass(frozen=True)
class DetectResult:
    width: int
    height: int
    boxes: tuple[Box, ...]
    stage_us: dict[str, int]
    upload_us: int = 0  # device time from "ready" to the last chunk (0 if the device does not say)
    seconds: float = 0.0  # host wall time of the whole request (upload + compute + answer), set by the host


def parse_detect(body: dict[str, Any], seconds: float = 0.0) -> DetectResult:
    return DetectResult(int(body["w"]), int(body["h"]), tuple(box_from_wire(b) for b in body["boxes"]),
                        {k: int(v) for k, v in body["us"].items()}, int(body.get("upload_us", 0)), seconds)


@dataclass
class TensorDump:
    """One tensor reassembled from a "tensor" record and its "part" records."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    exponent: int
    size: int
    crc: int
    data: bytearray = field(default_factory=bytearray)

    @classmethod
    def from_record(cls, body: dict[str, Any]) -> "TensorDump":
        return cls(body["name"], body["dtype"], tuple(body["shape"]), int(body["exp"]), int(body["size"]),
                   int(body["crc"]))

    def add_part(self, body: dict[str, Any]) -> None:
        if body["name"] != self.name or int(body["off"]) != len(self.data):
            raise ValueError(f"part of {body['name']} at {body['off']} out of order for {self.name}")
        self.data += base64.b64decode(body["data"], validate=True)

    @property
    def complete(self) -> bool:
        return len(self.data) == self.size and crc32(bytes(self.data)) == self.crc
