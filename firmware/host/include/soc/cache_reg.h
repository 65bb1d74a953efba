// Host stand-in for ESP-IDF's soc/esp32p4/include/soc/cache_reg.h. esp-dl reads the P4 cache counters only
// when DL_LOG_CACHE_COUNT is 1 (dl_define.hpp: 0), so no register is defined here.
#pragma once
