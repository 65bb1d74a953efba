// heap_caps_* on the host (see include/esp_heap_caps.h): two notional heaps with the chip's split. Blocks
// come from posix_memalign; a registry keeps each block's size and heap so free/minimum/largest figures
// follow esp-dl's allocations and a request that does not fit fails (returns NULL) as on the chip.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "esp_heap_caps.h"
#include "esp_memory_utils.h"
#include "hil_host.hpp"
#include "sdkconfig.h"

namespace {

struct Heap {
    size_t total = 0, used = 0, peak = 0;
};

struct Registry {
    std::mutex lock;
    Heap internal, spiram;
    std::unordered_map<void *, std::pair<size_t, bool>> blocks;  // size, in PSRAM
    bool ready = false;

    void init()
    {
        if (ready) {
            return;
        }
        internal.total = hil_host::env_size("HIL_HOST_INTERNAL_HEAP", 512 * 1024);
#if CONFIG_SPIRAM
        spiram.total = hil_host::env_size("HIL_HOST_SPIRAM_HEAP", 32 * 1024 * 1024);
#endif
        ready = true;
    }
};

Registry &registry()
{
    static Registry r;
    return r;
}

// Small default allocations stay internal, large ones go to PSRAM (CONFIG_SPIRAM_MALLOC_ALWAYSINTERNAL 16 KiB).
constexpr size_t kAlwaysInternal = 16 * 1024;

void *allocate(size_t alignment, size_t size, uint32_t caps)
{
    Registry &r = registry();
    std::lock_guard<std::mutex> guard(r.lock);
    r.init();
    if (alignment < alignof(std::max_align_t)) {
        alignment = alignof(std::max_align_t);
    }
    const bool want_spiram = (caps & MALLOC_CAP_SPIRAM) != 0;
    const bool want_internal = (caps & (MALLOC_CAP_INTERNAL | MALLOC_CAP_DMA | MALLOC_CAP_TCM)) != 0;
    Heap *order[2] = {nullptr, nullptr};
    if (want_spiram) {
        order[0] = &r.spiram;
    } else if (want_internal) {
        order[0] = &r.internal;
    } else if (size > kAlwaysInternal) {
        order[0] = &r.spiram;
        order[1] = &r.internal;
    } else {
        order[0] = &r.internal;
        order[1] = &r.spiram;
    }
    for (Heap *h : order) {
        if (h == nullptr || h->total - h->used < size) {
            continue;
        }
        void *p = nullptr;
        if (posix_memalign(&p, alignment, size == 0 ? 1 : size) != 0) {
            return nullptr;
        }
        h->used += size;
        if (h->used > h->peak) {
            h->peak = h->used;
        }
        r.blocks[p] = {size, h == &r.spiram};
        return p;
    }
    return nullptr;
}

Heap *select(Registry &r, uint32_t caps)
{
    return (caps & MALLOC_CAP_SPIRAM) ? &r.spiram : &r.internal;
}

}  // namespace

namespace hil_host {

bool ptr_in_spiram(const void *p)
{
    Registry &r = registry();
    std::lock_guard<std::mutex> guard(r.lock);
    auto it = r.blocks.find(const_cast<void *>(p));
    if (it != r.blocks.end()) {
        return it->second.second;
    }
    for (const auto &kv : r.blocks) {  // inside a block
        const auto *base = static_cast<const uint8_t *>(kv.first);
        if (p >= base && p < base + kv.second.first) {
            return kv.second.second;
        }
    }
    return false;
}

}  // namespace hil_host

extern "C" {

void *heap_caps_malloc(size_t size, uint32_t caps)
{
    return allocate(16, size, caps);
}

void *heap_caps_calloc(size_t n, size_t size, uint32_t caps)
{
    void *p = allocate(16, n * size, caps);
    if (p != nullptr) {
        std::memset(p, 0, n * size);
    }
    return p;
}

void *heap_caps_aligned_alloc(size_t alignment, size_t size, uint32_t caps)
{
    return allocate(alignment, size, caps);
}

void *heap_caps_aligned_calloc(size_t alignment, size_t n, size_t size, uint32_t caps)
{
    void *p = allocate(alignment, n * size, caps);
    if (p != nullptr) {
        std::memset(p, 0, n * size);
    }
    return p;
}

void heap_caps_free(void *ptr)
{
    if (ptr == nullptr) {
        return;
    }
    Registry &r = registry();
    {
        std::lock_guard<std::mutex> guard(r.lock);
        auto it = r.blocks.find(ptr);
        if (it != r.blocks.end()) {
            (it->second.second ? r.spiram : r.internal).used -= it->second.first;
            r.blocks.erase(it);
        }
    }
    std::free(ptr);  // a block from malloc() is accepted too, as ESP-IDF's heap_caps_free does
}

void heap_caps_aligned_free(void *ptr)
{
    heap_caps_free(ptr);
}

void *heap_caps_realloc(void *ptr, size_t size, uint32_t caps)
{
    void *p = heap_caps_malloc(size, caps);
    if (p != nullptr && ptr != nullptr) {
        size_t old = 0;
        {
            Registry &r = registry();
            std::lock_guard<std::mutex> guard(r.lock);
            auto it = r.blocks.find(ptr);
            old = it != r.blocks.end() ? it->second.first : size;
        }
        std::memcpy(p, ptr, old < size ? old : size);
        heap_caps_free(ptr);
    }
    return p;
}

size_t heap_caps_get_free_size(uint32_t caps)
{
    Registry &r = registry();
    std::lock_guard<std::mutex> guard(r.lock);
    r.init();
    const Heap *h = select(r, caps);
    return h->total - h->used;
}

size_t heap_caps_get_minimum_free_size(uint32_t caps)
{
    Registry &r = registry();
    std::lock_guard<std::mutex> guard(r.lock);
    r.init();
    const Heap *h = select(r, caps);
    return h->total - h->peak;
}

size_t heap_caps_get_largest_free_block(uint32_t caps)
{
    return heap_caps_get_free_size(caps);  // the host heap does not fragment
}

size_t heap_caps_get_total_size(uint32_t caps)
{
    Registry &r = registry();
    std::lock_guard<std::mutex> guard(r.lock);
    r.init();
    return select(r, caps)->total;
}

void heap_caps_print_heap_info(uint32_t caps)
{
    (void)caps;
}

bool heap_caps_check_integrity_all(bool print_errors)
{
    (void)print_errors;
    return true;
}

}  // extern "C"
