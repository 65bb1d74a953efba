// Builders for every record the device sends: the C++ twin of host/protocol/messages.py.
//
// Each returns a complete line (sentinel, canonical JSON, CRC, LF). Field order is part of the
// canonical form and is pinned by the golden frames in fixtures/protocol.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hil {

constexpr size_t kDumpPartBytes = 3072;  // raw bytes per "part" record (4096 base64 characters)

struct TensorInfo {
    std::string name;
    std::string dtype;  // "int8", "int16", ...
    std::vector<int> shape;
    int exponent = 0;
};

struct HeapInfo {
    uint64_t internal_free = 0, internal_min = 0, internal_largest = 0;
    uint64_t spiram_free = 0, spiram_min = 0, spiram_largest = 0;
};

struct InfoFields {
    std::string chip;
    int rev = 0;  // major * 100 + minor
    int cores = 0;
    std::string idf, espdl, app_version, app_sha256;
    std::string model_state, model_name, model_sha256, pack_sha256;
    std::vector<TensorInfo> inputs, outputs;
    HeapInfo heap;
    uint64_t max_image = 0;
    uint32_t chunk_max = 0, win_max = 0;
    uint32_t queue = 0;  // images held for queued detects (protocol 2)
    std::string console, selftest;
};

struct BoxOut {
    int category;
    float score;
    int x1, y1, x2, y2;
};

std::string boot_record(std::string_view reason, std::string_view app_sha256, std::string_view model_state,
                        std::string_view model_sha256);
std::string info_record(int64_t id, const InfoFields &f);
std::string ready_record(int64_t id, uint8_t upload_id, uint32_t chunk, uint32_t window, uint32_t chunks);
std::string ack_record(uint8_t upload_id, uint32_t next);
std::string nak_record(uint8_t upload_id, uint32_t seq);
std::string error_record(int64_t id, std::string_view code, std::string_view message);
// upload_us: from sending "ready" to the last chunk, on the device clock (measures the link).
std::string detect_record(int64_t id, int width, int height, const std::vector<BoxOut> &boxes, int64_t pre_us,
                          int64_t model_us, int64_t post_us, int64_t upload_us);
std::string tensor_record(int64_t id, const TensorInfo &t, const uint8_t *data, size_t size);
// The part starting at byte `offset` of the tensor (at most kDumpPartBytes bytes).
std::string part_record(int64_t id, std::string_view name, size_t offset, const uint8_t *data, size_t size);
std::string dump_record(int64_t id, const std::vector<std::string> &names);
std::string run_record(int64_t id, uint32_t index, int64_t pre_us, int64_t model_us, int64_t post_us);
std::string bench_record(int64_t id, uint32_t warmup, uint32_t runs);
std::string layer_record(int64_t id, uint32_t index, std::string_view name, std::string_view type, int64_t us);
std::string profile_record(int64_t id, uint32_t layers, int64_t total_us);
std::string selftest_record(int64_t id, bool passed, int64_t us);

std::string base64(const uint8_t *data, size_t len);
std::string hex(const uint8_t *data, size_t len);

}  // namespace hil
