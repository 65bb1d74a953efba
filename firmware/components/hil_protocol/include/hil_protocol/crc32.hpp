// CRC-32/ISO-HDLC (the zlib polynomial), as used by every protocol checksum.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hil {

// Equal to zlib.crc32(data, crc) in Python and to ESP-IDF's esp_rom_crc32_le(crc, data, len):
// pass the previous result as `crc` to continue a running checksum.
uint32_t crc32(const void *data, size_t len, uint32_t crc = 0);

}  // namespace hil
