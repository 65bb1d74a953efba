// Host stand-in for Mbed TLS 3.x mbedtls/sha256.h as ESP-IDF 5.x ships it: a plain FIPS 180-4 SHA-256
// (src/sha256_host.cpp), so the host hashes exactly what the chip's mbedtls would.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t state[8];
    uint64_t total;
    unsigned char buffer[64];
    int is224;
} mbedtls_sha256_context;

void mbedtls_sha256_init(mbedtls_sha256_context *ctx);
void mbedtls_sha256_free(mbedtls_sha256_context *ctx);
int mbedtls_sha256_starts(mbedtls_sha256_context *ctx, int is224);
int mbedtls_sha256_update(mbedtls_sha256_context *ctx, const unsigned char *input, size_t ilen);
int mbedtls_sha256_finish(mbedtls_sha256_context *ctx, unsigned char *output);
int mbedtls_sha256(const unsigned char *input, size_t ilen, unsigned char *output, int is224);

#ifdef __cplusplus
}
#endif
