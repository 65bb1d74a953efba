/* Host stand-in for ESP-IDF's logging: errors and warnings go to the shim's last-message buffer. */
#pragma once
#include "esp_err.h"
#ifdef __cplusplus
extern "C" {
#endif
void hil_log(char level, const char *tag, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#ifdef __cplusplus
}
#endif
#define ESP_LOGE(tag, fmt, ...) hil_log('E', tag, fmt, ##__VA_ARGS__)
#define ESP_LOGW(tag, fmt, ...) hil_log('W', tag, fmt, ##__VA_ARGS__)
#define ESP_LOGI(tag, fmt, ...) ((void)0)
#define ESP_LOGD(tag, fmt, ...) ((void)0)
#define ESP_LOGV(tag, fmt, ...) ((void)0)
