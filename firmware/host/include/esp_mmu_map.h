// Host stand-in for ESP-IDF's esp_mmu_map.h (v5.5): only the declarations esp-dl's dl_tool.hpp names.
#pragma once

#include <stdint.h>

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t esp_paddr_t;
typedef enum {
    MMU_TARGET_FLASH0 = 1,
    MMU_TARGET_PSRAM0 = 2,
} mmu_target_t;

esp_err_t esp_mmu_vaddr_to_paddr(void *vaddr, esp_paddr_t *out_paddr, mmu_target_t *out_target);

#ifdef __cplusplus
}
#endif
