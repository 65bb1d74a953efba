/* Host stand-in for ESP-IDF's esp_system.h. In ESP-IDF the headers esp-dl includes bring assert.h and
 * esp_heap_caps.h along; here this one does. */
#pragma once
#include <assert.h>
#include <stdint.h>
#include "esp_err.h"
#include "esp_heap_caps.h"
#include <limits.h>
