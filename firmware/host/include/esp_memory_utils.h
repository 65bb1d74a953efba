// Host stand-in for ESP-IDF's esp_memory_utils.h (v5.5): where a pointer lives. On the host every heap
// block the heap_caps stand-in gave out with MALLOC_CAP_SPIRAM counts as external RAM, the rest as internal.
#pragma once

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

bool esp_ptr_external_ram(const void *p);
bool esp_ptr_internal(const void *p);
bool esp_ptr_in_drom(const void *p);
bool esp_ptr_in_tcm(const void *p);
bool esp_ptr_in_spm(const void *p);
bool esp_ptr_executable(const void *p);
bool esp_ptr_byte_accessible(const void *p);

#ifdef __cplusplus
}
#endif
