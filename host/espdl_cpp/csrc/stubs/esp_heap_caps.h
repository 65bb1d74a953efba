/* Host stand-in for ESP-IDF's heap_caps: plain malloc/free; capabilities are ignored. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define MALLOC_CAP_DEFAULT (1 << 12)
#define MALLOC_CAP_INTERNAL (1 << 11)
#define MALLOC_CAP_SPIRAM (1 << 10)
#define MALLOC_CAP_8BIT (1 << 2)
#define MALLOC_CAP_SIMD (1 << 17)
#define MALLOC_CAP_CACHE_ALIGNED (1 << 18)
static inline void *heap_caps_malloc(size_t size, uint32_t caps) { (void)caps; return malloc(size ? size : 1); }
static inline void *heap_caps_calloc(size_t n, size_t size, uint32_t caps) { (void)caps; return calloc(n ? n : 1, size ? size : 1); }
static inline void *heap_caps_aligned_alloc(size_t alignment, size_t size, uint32_t caps)
{
    (void)caps;
    if (alignment < sizeof(void *)) alignment = sizeof(void *);
    size = (size + alignment - 1) / alignment * alignment;
    return aligned_alloc(alignment, size ? size : alignment);
}
static inline void *heap_caps_aligned_calloc(size_t alignment, size_t n, size_t size, uint32_t caps)
{
    void *p = heap_caps_aligned_alloc(alignment, n * size, caps);
    if (p) memset(p, 0, n * size);
    return p;
}
static inline void heap_caps_free(void *ptr) { free(ptr); }
static inline void heap_caps_aligned_free(void *ptr) { free(ptr); }
static inline size_t heap_caps_get_largest_free_block(uint32_t caps) { (void)caps; return 0; }
static inline size_t heap_caps_get_free_size(uint32_t caps) { (void)caps; return 0; }
#define HEAP_IRAM_ATTR
