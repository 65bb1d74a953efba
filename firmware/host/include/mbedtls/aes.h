// Host stand-in for Mbed TLS 3.x mbedtls/aes.h (ESP-IDF 5.x): declarations esp-dl's fbs_loader.cpp
// names for encrypted models. The host build links no AES: encrypted packs are refused (src/aes_host.cpp).
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t rk[68];
    int nr;
} mbedtls_aes_context;

void mbedtls_aes_init(mbedtls_aes_context *ctx);
void mbedtls_aes_free(mbedtls_aes_context *ctx);
int mbedtls_aes_setkey_enc(mbedtls_aes_context *ctx, const unsigned char *key, unsigned int keybits);
int mbedtls_aes_crypt_ctr(mbedtls_aes_context *ctx, size_t length, size_t *nc_off, unsigned char nonce_counter[16],
                          unsigned char stream_block[16], const unsigned char *input, unsigned char *output);

#ifdef __cplusplus
}
#endif
