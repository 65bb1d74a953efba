// Record line and chunk frame encoding, line checking (see wire.hpp).
#include "hil_protocol/wire.hpp"

#include "hil_protocol/crc32.hpp"

namespace hil {

static const char kHex[] = "0123456789abcdef";

std::string encode_line(std::string_view json_body)
{
    std::string line;
    line.reserve(kSentinelLen + json_body.size() + 10);
    line.append(kSentinel, kSentinelLen);
    line.append(json_body);
    line += ' ';
    const uint32_t crc = crc32(json_body.data(), json_body.size());
    for (int shift = 28; shift >= 0; shift -= 4) {
        line += kHex[(crc >> shift) & 0xF];
    }
    line += '\n';
    return line;
}

std::vector<uint8_t> encode_chunk(uint8_t upload_id, uint32_t seq, const uint8_t *payload, size_t len)
{
    std::vector<uint8_t> f(kChunkOverhead + len);
    f[0] = kChunkMagic0;
    f[1] = kChunkMagic1;
    f[2] = upload_id;
    f[3] = 0;
    for (int k = 0; k < 4; ++k) {
        f[4 + k] = static_cast<uint8_t>(seq >> (8 * k));
    }
    f[8] = static_cast<uint8_t>(len);
    f[9] = static_cast<uint8_t>(len >> 8);
    for (size_t i = 0; i < len; ++i) {
        f[kChunkHeaderSize + i] = payload[i];
    }
    const uint32_t crc = crc32(f.data() + 2, kChunkHeaderSize - 2 + len);
    for (int k = 0; k < 4; ++k) {
        f[kChunkHeaderSize + len + k] = static_cast<uint8_t>(crc >> (8 * k));
    }
    return f;
}

LineStatus check_line(std::string_view line, std::string_view *body)
{
    if (line.substr(0, kSentinelLen) != std::string_view(kSentinel, kSentinelLen)) {
        return LineStatus::kNoSentinel;
    }
    if (!line.empty() && line.back() == '\n') {
        line.remove_suffix(1);
    }
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    std::string_view rest = line.substr(kSentinelLen);
    if (rest.size() < 10 || rest[rest.size() - 9] != ' ') {
        return LineStatus::kNoTrailer;
    }
    uint32_t crc = 0;
    for (size_t i = rest.size() - 8; i < rest.size(); ++i) {
        const char c = rest[i];
        uint32_t v;
        if (c >= '0' && c <= '9') {
            v = static_cast<uint32_t>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v = static_cast<uint32_t>(c - 'a' + 10);
        } else {
            return LineStatus::kBadCrcText;
        }
        crc = (crc << 4) | v;
    }
    std::string_view json = rest.substr(0, rest.size() - 9);
    if (crc32(json.data(), json.size()) != crc) {
        return LineStatus::kCrcMismatch;
    }
    *body = json;
    return LineStatus::kOk;
}

const char *line_status_text(LineStatus status)
{
    switch (status) {
    case LineStatus::kOk: return "ok";
    case LineStatus::kNoSentinel: return "line does not start with the record sentinel";
    case LineStatus::kNoTrailer: return "record has no ' <crc32>' trailer";
    case LineStatus::kBadCrcText: return "record CRC is not 8 lowercase hex digits";
    case LineStatus::kCrcMismatch: return "record CRC mismatch";
    }
    return "?";
}

}  // namespace hil
