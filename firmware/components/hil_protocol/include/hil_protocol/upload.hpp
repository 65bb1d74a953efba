// Device side of the windowed image upload: the C++ twin of host/protocol/upload.py UploadReceiver.
//
// Chunks are copied straight to their offset in the caller's image buffer, so out-of-order and
// retransmitted chunks cost nothing. The receiver answers with "ack" (highest contiguous chunk)
// and "nak" (a chunk seen corrupted or skipped) records, returned as ready-to-send lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hil {

class UploadReceiver {
public:
    // Start an upload into `dest` (`size` bytes, owned by the caller) cut into `chunk`-byte chunks.
    void begin(uint8_t upload_id, uint8_t *dest, size_t size, size_t chunk);
    void reset();

    // A CRC-valid chunk frame; appends the record lines to send to `out`.
    void on_chunk(uint8_t upload_id, uint32_t seq, const uint8_t *payload, size_t len, std::vector<std::string> &out);
    // A chunk frame that failed its CRC, with its unverified header fields.
    void on_bad_frame(uint8_t upload_id, uint32_t seq, std::vector<std::string> &out);

    bool active() const { return dest_ != nullptr; }
    bool complete() const { return active() && next_ >= n_; }
    uint8_t upload_id() const { return id_; }
    uint32_t next() const { return next_; }
    uint32_t chunks() const { return n_; }
    size_t size() const { return size_; }

private:
    size_t expected_len(uint32_t seq) const;

    uint8_t id_ = 0;
    uint8_t *dest_ = nullptr;
    size_t size_ = 0;
    size_t chunk_ = 0;
    uint32_t n_ = 0;
    uint32_t next_ = 0;
    std::vector<uint8_t> have_;
    std::vector<uint8_t> naked_;
};

}  // namespace hil
