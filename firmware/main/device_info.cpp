// Device identity and memory figures for "boot" and "info" (see device_info.hpp).
#include "device_info.hpp"

#include "esp_app_desc.h"
#include "esp_chip_info.h"
#include "esp_heap_caps.h"
#include "esp_idf_version.h"
#include "esp_system.h"
#include "sdkconfig.h"

#ifndef HIL_ESPDL_VERSION
#define HIL_ESPDL_VERSION "unknown"
#endif

namespace hil_fw {

std::string reset_reason()
{
    switch (esp_reset_reason()) {
    case ESP_RST_POWERON: return "poweron";
    case ESP_RST_EXT: return "external";
    case ESP_RST_SW: return "software";
    case ESP_RST_PANIC: return "panic";
    case ESP_RST_INT_WDT: return "int_wdt";
    case ESP_RST_TASK_WDT: return "task_wdt";
    case ESP_RST_WDT: return "wdt";
    case ESP_RST_DEEPSLEEP: return "deepsleep";
    case ESP_RST_BROWNOUT: return "brownout";
    case ESP_RST_SDIO: return "sdio";
    case ESP_RST_USB: return "usb";
    case ESP_RST_JTAG: return "jtag";
    case ESP_RST_EFUSE: return "efuse";
    case ESP_RST_PWR_GLITCH: return "power_glitch";
    case ESP_RST_CPU_LOCKUP: return "cpu_lockup";
    default: return "unknown";
    }
}

std::string app_elf_sha256()
{
    char buf[65] = {0};
    esp_app_get_elf_sha256(buf, sizeof(buf));  // sha256 of the ELF, as idf.py prints it
    return buf;
}

void fill_device_info(hil::InfoFields *f)
{
    esp_chip_info_t chip;
    esp_chip_info(&chip);
    f->chip = CONFIG_IDF_TARGET;
    f->rev = chip.revision;  // major * 100 + minor
    f->cores = chip.cores;
    f->idf = esp_get_idf_version();
    f->espdl = HIL_ESPDL_VERSION;
    f->app_version = esp_app_get_description()->version;
    f->app_sha256 = app_elf_sha256();
    f->heap.internal_free = heap_caps_get_free_size(MALLOC_CAP_INTERNAL);
    f->heap.internal_min = heap_caps_get_minimum_free_size(MALLOC_CAP_INTERNAL);
    f->heap.internal_largest = heap_caps_get_largest_free_block(MALLOC_CAP_INTERNAL);
    f->heap.spiram_free = heap_caps_get_free_size(MALLOC_CAP_SPIRAM);
    f->heap.spiram_min = heap_caps_get_minimum_free_size(MALLOC_CAP_SPIRAM);
    f->heap.spiram_largest = heap_caps_get_largest_free_block(MALLOC_CAP_SPIRAM);
}

}  // namespace hil_fw
