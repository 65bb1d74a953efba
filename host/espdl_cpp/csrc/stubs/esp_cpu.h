/* Host stand-in for ESP-IDF's esp_cpu.h (esp-dl's latency helpers only). */
#pragma once
#include <stdint.h>
#include "esp_timer.h"
static inline uint32_t esp_cpu_get_cycle_count(void) { return (uint32_t)esp_timer_get_time(); }
