// Host stand-in for ESP-IDF's esp_cpu.h (v5.5): the cycle counter (nanoseconds on the host) and core id.
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t esp_cpu_cycle_count_t;
esp_cpu_cycle_count_t esp_cpu_get_cycle_count(void);
int esp_cpu_get_core_id(void);

#ifdef __cplusplus
}
#endif
