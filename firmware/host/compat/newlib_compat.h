// newlib functions the chips' C library has and the host's glibc (< 2.38) lacks, for esp-dl's sources.
// Forced into the esp-dl compile (-include) only when the host has no strlcpy (see ../CMakeLists.txt).
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

size_t strlcpy(char *dst, const char *src, size_t size);

#ifdef __cplusplus
}
#endif
