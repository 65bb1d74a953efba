// CRC-32/ISO-HDLC, table driven (portable; the firmware does not depend on a ROM routine).
#include "hil_protocol/crc32.hpp"

#include <array>

namespace hil {
namespace {

constexpr std::array<uint32_t, 256> make_table()
{
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1U) ? (0xEDB88320U ^ (c >> 1)) : (c >> 1);
        }
        table[i] = c;
    }
    return table;
}

constexpr std::array<uint32_t, 256> kTable = make_table();

}  // namespace

uint32_t crc32(const void *data, size_t len, uint32_t crc)
{
    const auto *p = static_cast<const uint8_t *>(data);
    crc = ~crc;
    for (size_t i = 0; i < len; ++i) {
        crc = kTable[(crc ^ p[i]) & 0xFFU] ^ (crc >> 8);
    }
    return ~crc;
}

}  // namespace hil
