// PDL3 pack header parsing (see pdl3.hpp).
#include "hil_protocol/pdl3.hpp"

#include <cstring>

namespace hil {

static uint32_t le32(const uint8_t *p)
{
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
           (static_cast<uint32_t>(p[3]) << 24);
}

bool parse_pdl3(const uint8_t *data, size_t len, Pdl3Header *out, std::string *error)
{
    auto fail = [&](const char *why) {
        if (error) {
            *error = why;
        }
        return false;
    };
    if (data == nullptr || len < kPdl3HeaderSize) {
        return fail("shorter than a PDL3 header");
    }
    if (std::memcmp(data, "PDL3", 4) != 0) {
        return fail("no PDL3 magic (not a pack written by esp-dl >= 3.3.7 pack_espdl_models.py)");
    }
    const char *ver = reinterpret_cast<const char *>(data + 4);
    out->version.assign(ver, strnlen(ver, 16));
    out->package_size = le32(data + 20);
    std::memcpy(out->sha256, data + 24, 32);
    const uint32_t n = le32(data + 56);
    if (n == 0 || n > kPdl3MaxModels) {
        return fail("model count out of range");
    }
    const size_t size = out->package_size;
    if (size > len || size < kPdl3HeaderSize + 12 * static_cast<size_t>(n)) {
        return fail("package size inconsistent with the partition");
    }
    out->entries.clear();
    for (uint32_t i = 0; i < n; ++i) {
        const uint8_t *e = data + kPdl3HeaderSize + 12 * i;
        Pdl3Entry entry;
        entry.data_offset = le32(e);
        const uint32_t name_off = le32(e + 4);
        const uint32_t name_len = le32(e + 8);
        if (name_len == 0 || name_len > 255 || static_cast<size_t>(name_off) + name_len > size) {
            return fail("model name outside the package");
        }
        entry.name.assign(reinterpret_cast<const char *>(data + name_off), name_len);
        if (entry.data_offset % 16 != 0 || static_cast<size_t>(entry.data_offset) + 16 > size) {
            return fail("model data offset invalid");
        }
        const uint8_t *edl = data + entry.data_offset;
        if (std::memcmp(edl, "EDL2", 4) != 0) {
            return fail("sub-model is not EDL2");
        }
        entry.edl_mode = le32(edl + 4);
        const uint64_t file_size = 16ULL + le32(edl + 8);
        if (entry.data_offset + file_size > size) {
            return fail("sub-model extends past the package");
        }
        entry.file_size = static_cast<uint32_t>(file_size);
        out->entries.push_back(std::move(entry));
    }
    return true;
}

}  // namespace hil
