// Host stand-in for ESP-IDF's esp_idf_version.h. The host build emulates ESP-IDF v5.5.1 unless
// HIL_HOST_IDF_VERSION_MAJOR/MINOR/PATCH say otherwise (the build also compiles the ESP-IDF 6 paths).
#pragma once

#ifndef HIL_HOST_IDF_VERSION_MAJOR
#define HIL_HOST_IDF_VERSION_MAJOR 5
#define HIL_HOST_IDF_VERSION_MINOR 5
#define HIL_HOST_IDF_VERSION_PATCH 1
#endif

#define ESP_IDF_VERSION_MAJOR HIL_HOST_IDF_VERSION_MAJOR
#define ESP_IDF_VERSION_MINOR HIL_HOST_IDF_VERSION_MINOR
#define ESP_IDF_VERSION_PATCH HIL_HOST_IDF_VERSION_PATCH
#define ESP_IDF_VERSION_VAL(major, minor, patch) (((major) << 16) | ((minor) << 8) | (patch))
#define ESP_IDF_VERSION ESP_IDF_VERSION_VAL(ESP_IDF_VERSION_MAJOR, ESP_IDF_VERSION_MINOR, ESP_IDF_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif
const char *esp_get_idf_version(void);
#ifdef __cplusplus
}
#endif
