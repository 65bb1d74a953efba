// Device-side streaming decoder (see decoder.hpp).
#include "hil_protocol/decoder.hpp"

#include <algorithm>
#include <cstring>

#include "hil_protocol/crc32.hpp"

namespace hil {

RequestDecoder::RequestDecoder(size_t max_payload, size_t max_line)
    : max_payload_(std::min(max_payload, kMaxChunkPayload)), max_line_(max_line)
{
    cap_ = std::max(max_line_, kMaxChunkPayload + kChunkOverhead);
    buf_.reserve(cap_);
}

void RequestDecoder::set_max_payload(size_t max_payload)
{
    max_payload_ = std::min(max_payload, kMaxChunkPayload);
}

void RequestDecoder::drop(size_t n)
{
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(n));
}

void RequestDecoder::feed(const uint8_t *data, size_t len, const Callback &on_event)
{
    while (len > 0) {
        const size_t room = cap_ - buf_.size();
        const size_t take = std::min(room, len);
        buf_.insert(buf_.end(), data, data + take);
        data += take;
        len -= take;
        while (step(on_event)) {
        }
    }
}

size_t RequestDecoder::partial_start_len() const
{
    const size_t n_max = std::min(buf_.size(), kSentinelLen - 1);
    for (size_t n = n_max; n > 0; --n) {
        const uint8_t *tail = buf_.data() + buf_.size() - n;
        const bool sentinel = std::memcmp(tail, kSentinel, n) == 0;
        const bool magic = (n == 1 && tail[0] == kChunkMagic0);
        if (sentinel || magic) {
            return n;
        }
    }
    return 0;
}

bool RequestDecoder::step(const Callback &on_event)
{
    // Earliest complete sentinel or magic.
    size_t start = buf_.size();
    bool is_line = false;
    for (size_t i = 0; i < buf_.size(); ++i) {
        const uint8_t c = buf_[i];
        if (c == static_cast<uint8_t>(kSentinel[0]) && i + kSentinelLen <= buf_.size() &&
            std::memcmp(buf_.data() + i, kSentinel, kSentinelLen) == 0) {
            start = i;
            is_line = true;
            break;
        }
        if (c == kChunkMagic0 && i + 1 < buf_.size() && buf_[i + 1] == kChunkMagic1) {
            start = i;
            break;
        }
    }
    if (start == buf_.size()) {
        const size_t keep = partial_start_len();
        skipped_ += buf_.size() - keep;
        drop(buf_.size() - keep);
        return false;
    }
    skipped_ += start;
    drop(start);
    return is_line ? step_line(on_event) : step_chunk(on_event);
}

bool RequestDecoder::step_line(const Callback &on_event)
{
    const size_t limit = std::min(buf_.size(), max_line_);
    for (size_t i = kSentinelLen; i < limit; ++i) {
        const uint8_t c = buf_[i];
        if (c == '\n') {
            std::string_view line(reinterpret_cast<const char *>(buf_.data()), i + 1);
            std::string_view body;
            const LineStatus st = check_line(line, &body);
            DecoderEvent ev{};
            if (st == LineStatus::kOk) {
                ev.kind = DecoderEvent::kRequest;
                ev.body = body;
                on_event(ev);
                drop(i + 1);
            } else {
                ev.kind = DecoderEvent::kBad;
                ev.line = true;
                ev.reason = line_status_text(st);
                on_event(ev);
                drop(1);
            }
            return true;
        }
        if (!((c >= 0x20 && c <= 0x7E) || c == '\r')) {
            DecoderEvent ev{};
            ev.kind = DecoderEvent::kBad;
            ev.line = true;
            ev.reason = "request line interrupted by a non-text byte";
            on_event(ev);
            drop(1);
            return true;
        }
    }
    if (buf_.size() >= max_line_) {
        DecoderEvent ev{};
        ev.kind = DecoderEvent::kBad;
        ev.line = true;
        ev.reason = "request line too long";
        on_event(ev);
        drop(1);
        return true;
    }
    return false;
}

bool RequestDecoder::step_chunk(const Callback &on_event)
{
    if (buf_.size() < kChunkHeaderSize) {
        return false;
    }
    const uint8_t up = buf_[2];
    const uint8_t flags = buf_[3];
    uint32_t seq = 0;
    for (int k = 0; k < 4; ++k) {
        seq |= static_cast<uint32_t>(buf_[4 + k]) << (8 * k);
    }
    const size_t len = static_cast<size_t>(buf_[8]) | (static_cast<size_t>(buf_[9]) << 8);
    if (flags != 0 || up == 0 || len == 0 || len > max_payload_) {
        DecoderEvent ev{};
        ev.kind = DecoderEvent::kBad;
        ev.reason = "chunk header invalid";
        on_event(ev);
        drop(1);
        return true;
    }
    const size_t total = kChunkOverhead + len;
    if (buf_.size() < total) {
        return false;
    }
    uint32_t crc = 0;
    for (int k = 0; k < 4; ++k) {
        crc |= static_cast<uint32_t>(buf_[total - 4 + k]) << (8 * k);
    }
    DecoderEvent ev{};
    ev.upload_id = up;
    ev.seq = seq;
    if (crc32(buf_.data() + 2, total - 6) != crc) {
        ev.kind = DecoderEvent::kBad;
        ev.has_header = true;
        ev.reason = "chunk CRC mismatch";
        on_event(ev);
        drop(1);
        return true;
    }
    ev.kind = DecoderEvent::kChunk;
    ev.payload = buf_.data() + kChunkHeaderSize;
    ev.payload_len = len;
    on_event(ev);
    drop(total);
    return true;
}

}  // namespace hil
