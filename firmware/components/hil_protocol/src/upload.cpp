// Device side of the windowed image upload (see upload.hpp).
#include "hil_protocol/upload.hpp"

#include <cstring>

#include "hil_protocol/records.hpp"

namespace hil {

void UploadReceiver::begin(uint8_t upload_id, uint8_t *dest, size_t size, size_t chunk)
{
    id_ = upload_id;
    dest_ = dest;
    size_ = size;
    chunk_ = chunk;
    n_ = static_cast<uint32_t>((size + chunk - 1) / chunk);
    next_ = 0;
    have_.assign(n_, 0);
    naked_.assign(n_, 0);
}

void UploadReceiver::reset()
{
    dest_ = nullptr;
    id_ = 0;
    n_ = next_ = 0;
    have_.clear();
    naked_.clear();
    have_.shrink_to_fit();
    naked_.shrink_to_fit();
}

size_t UploadReceiver::expected_len(uint32_t seq) const
{
    const size_t off = static_cast<size_t>(seq) * chunk_;
    return (size_ - off) < chunk_ ? (size_ - off) : chunk_;
}

void UploadReceiver::on_chunk(uint8_t upload_id, uint32_t seq, const uint8_t *payload, size_t len,
                              std::vector<std::string> &out)
{
    if (!active() || upload_id != id_ || seq >= n_) {
        return;  // a stale upload's frame
    }
    if (len != expected_len(seq)) {
        out.push_back(nak_record(id_, seq));
        return;
    }
    if (have_[seq]) {
        out.push_back(ack_record(id_, next_));  // duplicate: the host may have lost our ack
        return;
    }
    std::memcpy(dest_ + static_cast<size_t>(seq) * chunk_, payload, len);
    have_[seq] = 1;
    for (uint32_t gap = next_; gap < seq; ++gap) {  // FIFO link: a gap is a lost chunk
        if (!have_[gap] && !naked_[gap]) {
            naked_[gap] = 1;
            out.push_back(nak_record(id_, gap));
        }
    }
    const uint32_t before = next_;
    while (next_ < n_ && have_[next_]) {
        ++next_;
    }
    if (next_ > before) {
        out.push_back(ack_record(id_, next_));
    }
}

void UploadReceiver::on_bad_frame(uint8_t upload_id, uint32_t seq, std::vector<std::string> &out)
{
    if (!active() || upload_id != id_ || seq < next_ || seq >= n_ || have_[seq]) {
        return;
    }
    naked_[seq] = 1;
    out.push_back(nak_record(id_, seq));
}

}  // namespace hil
