/* Host stand-in for ESP-IDF's esp_timer.h (esp-dl's latency helpers only). */
#pragma once
#include <stdint.h>
#include <time.h>
static inline int64_t esp_timer_get_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
