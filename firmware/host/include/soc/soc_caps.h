// Host stand-in for ESP-IDF's soc/soc_caps.h: the capabilities of the configured target (sdkconfig.h).
#pragma once

#include "sdkconfig.h"

#if CONFIG_IDF_TARGET_ESP32P4
#define SOC_CPU_CORES_NUM 2
#define SOC_PPA_SUPPORTED 1
#define SOC_JPEG_CODEC_SUPPORTED 1
#define SOC_USB_SERIAL_JTAG_SUPPORTED 1
#elif CONFIG_IDF_TARGET_ESP32S3
#define SOC_CPU_CORES_NUM 2
#define SOC_USB_SERIAL_JTAG_SUPPORTED 1
#else
#define SOC_CPU_CORES_NUM 1
#endif
