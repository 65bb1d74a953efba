// SHA-256 of a buffer: the firmware hashes the model file inside the PDL3 pack with it, so the device
// reports the same artifact id the host computes (hashlib.sha256 of the .espdl).
//
// On the chip it is ESP-IDF's mbedtls component (hardware SHA where the chip has one), see
// src/sha256_idf.cpp. The native build of this component does not compile it: nothing in the
// protocol core hashes (only firmware/main does), so the host needs no SHA-256 of its own.
#pragma once

#include <cstddef>
#include <string>

namespace hil {

struct Sha256 {
    // 64 lowercase hex digits; empty if the crypto library reports an error (the host then sees a
    // model_sha256 that matches nothing and says so).
    static std::string hex_digest(const void *data, size_t len);
};

}  // namespace hil
