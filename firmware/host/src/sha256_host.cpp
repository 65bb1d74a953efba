// SHA-256 (FIPS 180-4) behind Mbed TLS 3.x's mbedtls_sha256_* API, for the host build: the chip uses
// ESP-IDF's mbedtls (hardware SHA); the digest is the same function, so the host reports the sha256 the
// chip would. SHA-224 (is224 != 0) is refused: nothing in the firmware or esp-dl asks for it.
#include <cstring>

#include "mbedtls/sha256.h"

namespace {

constexpr uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

void block(uint32_t state[8], const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
        w[i] = (uint32_t(p[4 * i]) << 24) | (uint32_t(p[4 * i + 1]) << 16) | (uint32_t(p[4 * i + 2]) << 8) |
               uint32_t(p[4 * i + 3]);
    }
    for (int i = 16; i < 64; ++i) {
        const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6],
             h = state[7];
    for (int i = 0; i < 64; ++i) {
        const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

}  // namespace

extern "C" {

void mbedtls_sha256_init(mbedtls_sha256_context *ctx)
{
    std::memset(ctx, 0, sizeof(*ctx));
}

void mbedtls_sha256_free(mbedtls_sha256_context *ctx)
{
    if (ctx != nullptr) {
        std::memset(ctx, 0, sizeof(*ctx));
    }
}

int mbedtls_sha256_starts(mbedtls_sha256_context *ctx, int is224)
{
    if (is224 != 0) {
        return -1;
    }
    static const uint32_t init[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    std::memcpy(ctx->state, init, sizeof(init));
    ctx->total = 0;
    ctx->is224 = 0;
    return 0;
}

int mbedtls_sha256_update(mbedtls_sha256_context *ctx, const unsigned char *input, size_t ilen)
{
    size_t fill = static_cast<size_t>(ctx->total % 64);
    ctx->total += ilen;
    if (fill != 0) {
        const size_t take = ilen < 64 - fill ? ilen : 64 - fill;
        std::memcpy(ctx->buffer + fill, input, take);
        input += take;
        ilen -= take;
        if (fill + take < 64) {
            return 0;
        }
        block(ctx->state, ctx->buffer);
    }
    while (ilen >= 64) {
        block(ctx->state, input);
        input += 64;
        ilen -= 64;
    }
    if (ilen > 0) {
        std::memcpy(ctx->buffer, input, ilen);
    }
    return 0;
}

int mbedtls_sha256_finish(mbedtls_sha256_context *ctx, unsigned char *output)
{
    const uint64_t bits = ctx->total * 8;
    unsigned char pad[72] = {0x80};
    const size_t fill = static_cast<size_t>(ctx->total % 64);
    const size_t padlen = fill < 56 ? 56 - fill : 120 - fill;
    mbedtls_sha256_update(ctx, pad, padlen);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) {
        len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    }
    mbedtls_sha256_update(ctx, len, 8);
    for (int i = 0; i < 8; ++i) {
        output[4 * i] = static_cast<unsigned char>(ctx->state[i] >> 24);
        output[4 * i + 1] = static_cast<unsigned char>(ctx->state[i] >> 16);
        output[4 * i + 2] = static_cast<unsigned char>(ctx->state[i] >> 8);
        output[4 * i + 3] = static_cast<unsigned char>(ctx->state[i]);
    }
    return 0;
}

int mbedtls_sha256(const unsigned char *input, size_t ilen, unsigned char *output, int is224)
{
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    int rc = mbedtls_sha256_starts(&ctx, is224);
    if (rc == 0) {
        rc = mbedtls_sha256_update(&ctx, input, ilen);
    }
    if (rc == 0) {
        rc = mbedtls_sha256_finish(&ctx, output);
    }
    mbedtls_sha256_free(&ctx);
    return rc;
}

}  // extern "C"
