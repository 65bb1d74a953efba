// Host stand-in for the PSA Crypto API (Mbed TLS 4 / TF-PSA-Crypto) as ESP-IDF 6 ships it: the hash and
// cipher declarations the firmware (sha256_idf.cpp) and esp-dl's fbs_loader.cpp use on ESP-IDF >= 6.
// Compiled by the host build to check those ESP-IDF 6 paths; the host app links the ESP-IDF 5 path.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t psa_status_t;
typedef uint32_t psa_algorithm_t;
typedef uint32_t psa_key_id_t;
typedef uint16_t psa_key_type_t;
typedef uint32_t psa_key_usage_t;

#define PSA_SUCCESS ((psa_status_t)0)
#define PSA_ALG_SHA_256 ((psa_algorithm_t)0x02000009)
#define PSA_ALG_CTR ((psa_algorithm_t)0x04c01000)
#define PSA_KEY_TYPE_AES ((psa_key_type_t)0x2400)
#define PSA_KEY_USAGE_ENCRYPT ((psa_key_usage_t)0x00000100)
#define PSA_KEY_ID_NULL ((psa_key_id_t)0)

typedef struct {
    uint32_t opaque[64];
} psa_hash_operation_t;
typedef struct {
    uint32_t opaque[64];
} psa_cipher_operation_t;
typedef struct {
    uint32_t opaque[16];
} psa_key_attributes_t;

#define PSA_HASH_OPERATION_INIT {{0}}
#define PSA_CIPHER_OPERATION_INIT {{0}}
#define PSA_KEY_ATTRIBUTES_INIT {{0}}

psa_status_t psa_crypto_init(void);
psa_status_t psa_hash_compute(psa_algorithm_t alg, const uint8_t *input, size_t input_length, uint8_t *hash,
                              size_t hash_size, size_t *hash_length);
psa_status_t psa_hash_setup(psa_hash_operation_t *operation, psa_algorithm_t alg);
psa_status_t psa_hash_update(psa_hash_operation_t *operation, const uint8_t *input, size_t input_length);
psa_status_t psa_hash_finish(psa_hash_operation_t *operation, uint8_t *hash, size_t hash_size, size_t *hash_length);
psa_status_t psa_hash_abort(psa_hash_operation_t *operation);
void psa_set_key_usage_flags(psa_key_attributes_t *attributes, psa_key_usage_t usage_flags);
void psa_set_key_algorithm(psa_key_attributes_t *attributes, psa_algorithm_t alg);
void psa_set_key_type(psa_key_attributes_t *attributes, psa_key_type_t type);
void psa_set_key_bits(psa_key_attributes_t *attributes, size_t bits);
psa_status_t psa_import_key(const psa_key_attributes_t *attributes, const uint8_t *data, size_t data_length,
                            psa_key_id_t *key);
void psa_reset_key_attributes(psa_key_attributes_t *attributes);
psa_status_t psa_cipher_encrypt_setup(psa_cipher_operation_t *operation, psa_key_id_t key, psa_algorithm_t alg);
psa_status_t psa_cipher_set_iv(psa_cipher_operation_t *operation, const uint8_t *iv, size_t iv_length);
psa_status_t psa_cipher_update(psa_cipher_operation_t *operation, const uint8_t *input, size_t input_length,
                               uint8_t *output, size_t output_size, size_t *output_length);
psa_status_t psa_cipher_finish(psa_cipher_operation_t *operation, uint8_t *output, size_t output_size,
                               size_t *output_length);
psa_status_t psa_destroy_key(psa_key_id_t key);

#ifdef __cplusplus
}
#endif
