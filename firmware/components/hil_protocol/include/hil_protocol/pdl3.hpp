// PDL3 model pack header parsing (esp-dl >= 3.3.7 pack format), independent of esp-dl.
//
// The firmware uses it to name the model inside the partition and to hash the embedded .espdl
// file (16-byte EDL2 header + payload) so the device reports the same sha256 the host computes
// for its artifact. Layout: esp-dl/fbs_loader/pack_espdl_models.py and fbs_loader.hpp (v3.3.9).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hil {

struct Pdl3Entry {
    uint32_t data_offset = 0;
    std::string name;
    uint32_t edl_mode = 0;   // 0 plain, 1 AES-128-CTR
    uint32_t file_size = 0;  // 16 + EDL2 payload length: the original .espdl file size
};

struct Pdl3Header {
    std::string version;
    uint32_t package_size = 0;
    uint8_t sha256[32] = {};
    std::vector<Pdl3Entry> entries;
};

constexpr size_t kPdl3HeaderSize = 60;
constexpr size_t kPdl3MaxModels = 64;

// Parse the pack at `data` (`len` bytes available, normally the whole partition). Checks every
// offset against package_size and `len`; returns false with `error` set on any inconsistency.
bool parse_pdl3(const uint8_t *data, size_t len, Pdl3Header *out, std::string *error);

}  // namespace hil
