// Host stand-in for ESP-IDF's esp32s3/rom/cache.h: esp-dl's dl_tool_cache.hpp includes it for S3 but its
// header uses nothing from it (the cache preload calls are in dl_tool_cache.cpp, chip builds only).
#pragma once
