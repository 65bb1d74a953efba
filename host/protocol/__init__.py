"""The harness's device protocol codec, both ends: record lines, upload chunk frames, upload state machines.

Transport-free (bytes in, bytes out). The wire format is specified in docs/protocol.md; the C++
twin lives in firmware/components/hil_protocol; fixtures/protocol holds the golden frames both are
tested against.
"""

from host.protocol.device import DeviceBackend, DeviceService, Limits
from host.protocol.messages import DetectResult, TensorDump, encode_request, parse_detect
from host.protocol.stream import BadFrame, BadRecord, LogLine, Record, RecordDecoder, RequestDecoder
from host.protocol.upload import UploadFailed, UploadReceiver, UploadSender
from host.protocol.wire import (
    PROTOCOL_VERSION,
    Chunk,
    WireError,
    canonical_json,
    crc32,
    decode_chunk,
    decode_line,
    encode_chunk,
    encode_line,
)

__all__ = [
    "PROTOCOL_VERSION", "BadFrame", "DeviceBackend", "DeviceService",
    "Limits", "BadRecord", "Chunk", "DetectResult", "LogLine", "Record",
    "RecordDecoder", "RequestDecoder", "TensorDump", "UploadFailed", "UploadReceiver", "UploadSender",
    "WireError", "canonical_json", "crc32", "decode_chunk", "decode_line", "encode_chunk", "encode_line",
    "encode_request", "parse_detect",
]
