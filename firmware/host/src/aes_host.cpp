// Mbed TLS AES entry points for esp-dl's fbs_loader.cpp (encrypted .espdl models). The host build runs
// plain models only: every call fails, so an encrypted model does not load instead of loading garbage.
#include <cstdio>
#include <cstring>

#include "mbedtls/aes.h"

extern "C" {

void mbedtls_aes_init(mbedtls_aes_context *ctx)
{
    std::memset(ctx, 0, sizeof(*ctx));
}

void mbedtls_aes_free(mbedtls_aes_context *ctx)
{
    (void)ctx;
}

int mbedtls_aes_setkey_enc(mbedtls_aes_context *ctx, const unsigned char *key, unsigned int keybits)
{
    (void)ctx, (void)key, (void)keybits;
    std::fprintf(stderr, "host build: encrypted models are not supported (no AES)\n");
    return -0x0020;  // MBEDTLS_ERR_AES_INVALID_KEY_LENGTH
}

int mbedtls_aes_crypt_ctr(mbedtls_aes_context *ctx, size_t length, size_t *nc_off, unsigned char nonce_counter[16],
                          unsigned char stream_block[16], const unsigned char *input, unsigned char *output)
{
    (void)ctx, (void)nc_off, (void)nonce_counter, (void)stream_block, (void)input;
    std::memset(output, 0, length);
    return -0x0020;
}

}  // extern "C"
