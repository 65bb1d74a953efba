// Host stand-in for ESP-IDF's esp_err.h (components/esp_common/include/esp_err.h, v5.5): the error type,
// the codes esp-dl and the firmware use, ESP_ERROR_CHECK (aborts with the code, as on the chip).
#pragma once

#include <assert.h>  // ESP-IDF's esp_err.h includes it; esp-dl headers rely on that
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int esp_err_t;

#define ESP_OK 0
#define ESP_FAIL -1
#define ESP_ERR_NO_MEM 0x101
#define ESP_ERR_INVALID_ARG 0x102
#define ESP_ERR_INVALID_STATE 0x103
#define ESP_ERR_INVALID_SIZE 0x104
#define ESP_ERR_NOT_FOUND 0x105
#define ESP_ERR_NOT_SUPPORTED 0x106
#define ESP_ERR_TIMEOUT 0x107
#define ESP_ERR_INVALID_RESPONSE 0x108
#define ESP_ERR_INVALID_CRC 0x109
#define ESP_ERR_INVALID_VERSION 0x10A
#define ESP_ERR_INVALID_MAC 0x10B
#define ESP_ERR_NOT_FINISHED 0x10C
#define ESP_ERR_NOT_ALLOWED 0x10D

const char *esp_err_to_name(esp_err_t code);

#ifdef __cplusplus
}
#endif

#define ESP_ERROR_CHECK(x)                                                                                  \
    do {                                                                                                    \
        esp_err_t err_rc_ = (x);                                                                            \
        if (err_rc_ != ESP_OK) {                                                                            \
            fprintf(stderr, "ESP_ERROR_CHECK failed: esp_err_t 0x%x (%s) at %s:%d\n", err_rc_,             \
                    esp_err_to_name(err_rc_), __FILE__, __LINE__);                                          \
            abort();                                                                                        \
        }                                                                                                   \
    } while (0)

#define ESP_ERROR_CHECK_WITHOUT_ABORT(x) (x)
