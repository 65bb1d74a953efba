// Wire format constants and line/chunk encoding: the C++ twin of host/protocol/wire.py.
//
// docs/protocol.md is the specification. Change a number here only together with wire.py and the
// golden frames in fixtures/protocol.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hil {

// 2: queued detects (pipelined uploads), "queue" in info, error "busy" (docs/protocol.md section 4).
constexpr int kProtocolVersion = 2;

constexpr char kSentinel[] = "@HIL ";
constexpr size_t kSentinelLen = 5;
constexpr size_t kMaxRequestLine = 1024;   // host -> device line, sentinel to LF inclusive
constexpr size_t kMaxRecordLine = 16384;   // device -> host line

constexpr uint8_t kChunkMagic0 = 0xA5;
constexpr uint8_t kChunkMagic1 = 0xC3;
constexpr size_t kChunkHeaderSize = 10;    // magic(2) up(1) flags(1) seq(4 LE) len(2 LE)
constexpr size_t kChunkOverhead = 14;      // header + crc32(4 LE) over bytes [2, 10 + len)
constexpr size_t kMaxChunkPayload = 32768;

// SENTINEL + json_body + " " + crc32(json_body) as 8 lowercase hex + "\n".
std::string encode_line(std::string_view json_body);

// A chunk frame (the host sends these; the device side encodes them only in tests).
std::vector<uint8_t> encode_chunk(uint8_t upload_id, uint32_t seq, const uint8_t *payload, size_t len);

enum class LineStatus { kOk, kNoSentinel, kNoTrailer, kBadCrcText, kCrcMismatch };

// Check one line (starting at the sentinel, optional trailing CR/LF). On kOk `body` is the JSON text.
LineStatus check_line(std::string_view line, std::string_view *body);
const char *line_status_text(LineStatus status);

}  // namespace hil
