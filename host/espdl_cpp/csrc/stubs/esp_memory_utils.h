/* Host stand-in for ESP-IDF's esp_memory_utils.h: every host pointer counts as internal RAM. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
static inline bool esp_ptr_external_ram(const void *p) { (void)p; return false; }
static inline bool esp_ptr_in_drom(const void *p) { (void)p; return false; }
static inline bool esp_ptr_internal(const void *p) { (void)p; return true; }
