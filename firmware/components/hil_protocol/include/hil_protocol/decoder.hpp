// Device-side streaming decoder: host bytes -> request lines and upload chunk frames.
//
// Same algorithm as host/protocol/stream.py RequestDecoder (the golden stream
// fixtures/protocol/stream_device.bin pins the event sequence): skip bytes until a sentinel or
// chunk magic, take one frame, and after a bad frame restart the scan one byte past its start.
// Memory is bounded: the buffer never exceeds max(max_line, max_payload + overhead) bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "hil_protocol/wire.hpp"

namespace hil {

struct DecoderEvent {
    enum Kind { kRequest, kChunk, kBad } kind;
    std::string_view body;         // kRequest: the CRC-checked JSON text (valid during the callback)
    uint8_t upload_id = 0;         // kChunk, or kBad with has_header
    uint32_t seq = 0;
    const uint8_t *payload = nullptr;  // kChunk (valid during the callback)
    size_t payload_len = 0;
    bool has_header = false;       // kBad: upload_id/seq come from an unverified chunk header
    bool line = false;             // kBad: a request line (not a chunk frame) was rejected
    const char *reason = "";       // kBad
};

class RequestDecoder {
public:
    using Callback = std::function<void(const DecoderEvent &)>;

    explicit RequestDecoder(size_t max_payload = kMaxChunkPayload, size_t max_line = kMaxRequestLine);

    // Feed any number of bytes; events are delivered in order through `on_event`.
    void feed(const uint8_t *data, size_t len, const Callback &on_event);
    // Bound chunk payloads to the negotiated chunk size (clamped to kMaxChunkPayload).
    void set_max_payload(size_t max_payload);
    size_t skipped() const { return skipped_; }
    size_t buffered() const { return buf_.size(); }
    size_t capacity() const { return cap_; }

private:
    bool step(const Callback &on_event);
    bool step_line(const Callback &on_event);
    bool step_chunk(const Callback &on_event);
    size_t partial_start_len() const;
    void drop(size_t n);

    std::vector<uint8_t> buf_;
    size_t max_payload_;
    size_t max_line_;
    size_t cap_;
    size_t skipped_ = 0;
};

}  // namespace hil
