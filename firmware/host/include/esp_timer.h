// Host stand-in for ESP-IDF's esp_timer.h (v5.5): microseconds since the app started (CLOCK_MONOTONIC).
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

int64_t esp_timer_get_time(void);

#ifdef __cplusplus
}
#endif
