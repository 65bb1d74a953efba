// SHA-256 (FIPS 180-4), portable: the firmware hashes the model file inside the pack with it so the
// device reports the same artifact id the host computes, on every ESP-IDF version (IDF 6 moved
// mbedtls to PSA; this avoids depending on either API).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hil {

class Sha256 {
public:
    Sha256();
    void update(const void *data, size_t len);
    void finish(uint8_t out[32]);
    static std::string hex_digest(const void *data, size_t len);

private:
    void block(const uint8_t *p);
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t used_ = 0;
    uint64_t total_ = 0;
};

}  // namespace hil
