// Host stand-in for ESP-IDF's FreeRTOS (components/freertos, v5.5): the types, tick conversion and
// constants the firmware and esp-dl use. Tasks are POSIX threads (src/freertos_host.cpp).
#pragma once

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

// As ESP-IDF's portmacro.h, which esp-dl headers rely on for MALLOC_CAP_* and heap_caps_*.
#include "esp_heap_caps.h"
#include "esp_system.h"
#include "sdkconfig.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t BaseType_t;
typedef uint32_t UBaseType_t;
typedef uint32_t TickType_t;
typedef uint8_t StackType_t;

#define pdFALSE ((BaseType_t)0)
#define pdTRUE ((BaseType_t)1)
#define pdPASS pdTRUE
#define pdFAIL pdFALSE
#define portMAX_DELAY ((TickType_t)0xffffffffUL)
#ifdef CONFIG_FREERTOS_HZ
#define configTICK_RATE_HZ CONFIG_FREERTOS_HZ
#else
#define configTICK_RATE_HZ 100
#endif
#define portTICK_PERIOD_MS ((TickType_t)1000 / configTICK_RATE_HZ)
#define pdMS_TO_TICKS(ms) ((TickType_t)(((uint64_t)(ms) * (uint64_t)configTICK_RATE_HZ) / (uint64_t)1000U))
#define pdTICKS_TO_MS(ticks) ((uint32_t)(((uint64_t)(ticks) * (uint64_t)1000U) / (uint64_t)configTICK_RATE_HZ))
#define configMAX_PRIORITIES 25
#define tskIDLE_PRIORITY ((UBaseType_t)0U)
#define tskNO_AFFINITY ((BaseType_t)0x7FFFFFFF)

BaseType_t xPortGetCoreID(void);

#ifdef __cplusplus
}
#endif
