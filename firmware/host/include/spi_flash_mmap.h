// Host stand-in for ESP-IDF's spi_flash_mmap.h (v5.5): the part esp-dl's FbsLoader calls.
#pragma once

#include <stdint.h>

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SPI_FLASH_MMAP_DATA,
    SPI_FLASH_MMAP_INST,
} spi_flash_mmap_memory_t;

typedef uint32_t spi_flash_mmap_handle_t;

#define SPI_FLASH_MMU_PAGE_SIZE 0x10000

// Free 64 KiB MMU pages; the host has no MMU limit and reports room for 256 pages (16 MiB).
uint32_t spi_flash_mmap_get_free_pages(spi_flash_mmap_memory_t memory);

#ifdef __cplusplus
}
#endif
