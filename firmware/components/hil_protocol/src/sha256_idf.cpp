// SHA-256 on the chip, from ESP-IDF's mbedtls component (see sha256.hpp). Compiled only in ESP-IDF
// builds (CMakeLists.txt). ESP-IDF 6 ships Mbed TLS 4, which made the legacy mbedtls/sha256.h
// private in favour of PSA Crypto; ESP-IDF 5.x ships Mbed TLS 3.x, whose one-shot
// mbedtls_sha256() every 5.x release has.
#include "hil_protocol/sha256.hpp"

#include <cstdint>

#include "esp_idf_version.h"
#include "hil_protocol/records.hpp"

#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(6, 0, 0)
#include "psa/crypto.h"
#else
#include "mbedtls/sha256.h"
#endif

namespace hil {

std::string Sha256::hex_digest(const void *data, size_t len)
{
    uint8_t digest[32];
    const auto *bytes = static_cast<const unsigned char *>(data);
#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(6, 0, 0)
    // ESP-IDF initialises PSA at startup; psa_crypto_init() is then a no-op returning success.
    size_t written = 0;
    if (psa_crypto_init() != PSA_SUCCESS ||
        psa_hash_compute(PSA_ALG_SHA_256, bytes, len, digest, sizeof(digest), &written) != PSA_SUCCESS ||
        written != sizeof(digest)) {
        return {};
    }
#else
    if (mbedtls_sha256(bytes, len, digest, 0 /* SHA-256, not SHA-224 */) != 0) {
        return {};
    }
#endif
    return hex(digest, sizeof(digest));
}

}  // namespace hil
