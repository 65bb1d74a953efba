// Host stand-in for ESP-IDF's esp_heap_caps.h (v5.5): capability flags and the heap_caps_* calls esp-dl
// and the firmware make. The host keeps two notional heaps (internal RAM and PSRAM, sizes from
// HIL_HOST_INTERNAL_HEAP / HIL_HOST_SPIRAM_HEAP bytes, default 512 KiB and 32 MiB) so free/minimum/largest
// figures move with esp-dl's allocations, and an allocation that would not fit fails as on the chip.
#pragma once

#include <stddef.h>
#include <stdint.h>

// Placement of the heap functions (IRAM on the chip unless CONFIG_HEAP_PLACE_FUNCTION_INTO_FLASH); esp-dl
// marks its aligned allocators with it.
#define HEAP_IRAM_ATTR

#ifdef __cplusplus
extern "C" {
#endif

#define MALLOC_CAP_EXEC (1 << 0)
#define MALLOC_CAP_32BIT (1 << 1)
#define MALLOC_CAP_8BIT (1 << 2)
#define MALLOC_CAP_DMA (1 << 3)
#define MALLOC_CAP_PID2 (1 << 4)
#define MALLOC_CAP_PID3 (1 << 5)
#define MALLOC_CAP_PID4 (1 << 6)
#define MALLOC_CAP_PID5 (1 << 7)
#define MALLOC_CAP_PID6 (1 << 8)
#define MALLOC_CAP_PID7 (1 << 9)
#define MALLOC_CAP_SPIRAM (1 << 10)
#define MALLOC_CAP_INTERNAL (1 << 11)
#define MALLOC_CAP_DEFAULT (1 << 12)
#define MALLOC_CAP_IRAM_8BIT (1 << 13)
#define MALLOC_CAP_RETENTION (1 << 14)
#define MALLOC_CAP_RTCRAM (1 << 15)
#define MALLOC_CAP_TCM (1 << 16)
#define MALLOC_CAP_DMA_DESC_AHB (1 << 17)
#define MALLOC_CAP_DMA_DESC_AXI (1 << 18)
#define MALLOC_CAP_CACHE_ALIGNED (1 << 19)
#define MALLOC_CAP_SIMD (1 << 20)
#define MALLOC_CAP_INVALID (1 << 31)

void *heap_caps_malloc(size_t size, uint32_t caps);
void *heap_caps_calloc(size_t n, size_t size, uint32_t caps);
void *heap_caps_realloc(void *ptr, size_t size, uint32_t caps);
void *heap_caps_aligned_alloc(size_t alignment, size_t size, uint32_t caps);
void *heap_caps_aligned_calloc(size_t alignment, size_t n, size_t size, uint32_t caps);
void heap_caps_free(void *ptr);
void heap_caps_aligned_free(void *ptr);
size_t heap_caps_get_free_size(uint32_t caps);
size_t heap_caps_get_minimum_free_size(uint32_t caps);
size_t heap_caps_get_largest_free_block(uint32_t caps);
size_t heap_caps_get_total_size(uint32_t caps);
void heap_caps_print_heap_info(uint32_t caps);
bool heap_caps_check_integrity_all(bool print_errors);

#ifdef __cplusplus
}
#endif
