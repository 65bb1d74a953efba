/* Host stand-in for ESP-IDF's esp_err.h: the error type and ESP_ERROR_CHECK, which throws instead of
 * aborting so the host can report a rejected image (the device aborts). */
#pragma once
#include <stdint.h>
typedef int esp_err_t;
#define ESP_OK 0
#define ESP_FAIL -1
#ifdef __cplusplus
#include <stdexcept>
#include <string>
#define ESP_ERROR_CHECK(x)                                                                  \
    do {                                                                                    \
        esp_err_t err_rc_ = (x);                                                            \
        if (err_rc_ != ESP_OK) throw std::runtime_error(std::string("ESP_ERROR_CHECK failed: ") + #x); \
    } while (0)
#endif
