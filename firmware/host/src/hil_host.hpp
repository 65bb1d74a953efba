// Shared helpers of the ESP-IDF stand-ins (host build only).
#pragma once

#include <cstddef>
#include <cstdint>

namespace hil_host {

// The environment variable as a byte count (decimal), or `fallback`.
size_t env_size(const char *name, size_t fallback);
// Whether p lies in a block the heap stand-in gave out from its PSRAM heap.
bool ptr_in_spiram(const void *p);
// Whether p lies in a mapped partition (flash, "drom" on the chip).
bool ptr_in_flash(const void *p);

}  // namespace hil_host
