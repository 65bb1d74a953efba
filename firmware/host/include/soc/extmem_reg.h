// Host stand-in for ESP-IDF's soc/esp32s3/include/soc/extmem_reg.h (see esp32s3/rom/cache.h).
#pragma once
