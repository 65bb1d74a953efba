// The small ESP-IDF services on the host: errors, logging, time, versions, chip and app identity, reset
// reason, pointer classification, randomness (see the headers in ../include).
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "esp_app_desc.h"
#include "esp_cache.h"
#include "esp_chip_info.h"
#include "esp_cpu.h"
#include "esp_err.h"
#include "esp_idf_version.h"
#include "esp_log.h"
#include "esp_memory_utils.h"
#include "esp_mmu_map.h"
#include "esp_random.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "hil_host.hpp"
#include "mbedtls/sha256.h"
#include "sdkconfig.h"

#ifndef HIL_HOST_APP_VERSION
#define HIL_HOST_APP_VERSION "host"
#endif

namespace hil_host {

size_t env_size(const char *name, size_t fallback)
{
    const char *v = std::getenv(name);
    if (v == nullptr || *v == '\0') {
        return fallback;
    }
    return static_cast<size_t>(std::strtoull(v, nullptr, 10));
}

}  // namespace hil_host

namespace {

int64_t monotonic_us()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

const int64_t g_boot_us = monotonic_us();

}  // namespace

extern "C" {

const char *esp_err_to_name(esp_err_t code)
{
    switch (code) {
    case ESP_OK: return "ESP_OK";
    case ESP_FAIL: return "ESP_FAIL";
    case ESP_ERR_NO_MEM: return "ESP_ERR_NO_MEM";
    case ESP_ERR_INVALID_ARG: return "ESP_ERR_INVALID_ARG";
    case ESP_ERR_INVALID_STATE: return "ESP_ERR_INVALID_STATE";
    case ESP_ERR_INVALID_SIZE: return "ESP_ERR_INVALID_SIZE";
    case ESP_ERR_NOT_FOUND: return "ESP_ERR_NOT_FOUND";
    case ESP_ERR_NOT_SUPPORTED: return "ESP_ERR_NOT_SUPPORTED";
    case ESP_ERR_TIMEOUT: return "ESP_ERR_TIMEOUT";
    default: return "UNKNOWN ERROR";
    }
}

// Log lines go to stdout (the console) in one locked write each, as ESP-IDF's vprintf-based log does.
void esp_log_write(esp_log_level_t level, const char *tag, const char *format, ...)
{
    (void)tag;
    if (level > ESP_LOG_INFO) {
        return;  // CONFIG_LOG_DEFAULT_LEVEL_INFO
    }
    va_list args;
    va_start(args, format);
    flockfile(stdout);
    vfprintf(stdout, format, args);
    fflush(stdout);
    funlockfile(stdout);
    va_end(args);
}

void esp_log_level_set(const char *tag, esp_log_level_t level)
{
    (void)tag, (void)level;
}

uint32_t esp_log_timestamp(void)
{
    return static_cast<uint32_t>((monotonic_us() - g_boot_us) / 1000);
}

int64_t esp_timer_get_time(void)
{
    return monotonic_us() - g_boot_us;
}

const char *esp_get_idf_version(void)
{
    // The ESP-IDF release the stand-ins follow, marked as the host build.
    static char version[32];
    snprintf(version, sizeof(version), "v%d.%d.%d-host", ESP_IDF_VERSION_MAJOR, ESP_IDF_VERSION_MINOR,
             ESP_IDF_VERSION_PATCH);
    return version;
}

esp_reset_reason_t esp_reset_reason(void)
{
    static const char *names[] = {"ESP_RST_UNKNOWN",  "ESP_RST_POWERON",   "ESP_RST_EXT",      "ESP_RST_SW",
                                  "ESP_RST_PANIC",    "ESP_RST_INT_WDT",   "ESP_RST_TASK_WDT", "ESP_RST_WDT",
                                  "ESP_RST_DEEPSLEEP", "ESP_RST_BROWNOUT", "ESP_RST_SDIO",     "ESP_RST_USB",
                                  "ESP_RST_JTAG",     "ESP_RST_EFUSE",     "ESP_RST_PWR_GLITCH", "ESP_RST_CPU_LOCKUP"};
    const char *v = std::getenv("HIL_HOST_RESET_REASON");
    if (v != nullptr && *v != '\0') {
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
            if (std::strcmp(v, names[i]) == 0) {
                return static_cast<esp_reset_reason_t>(i);
            }
        }
        return static_cast<esp_reset_reason_t>(std::atoi(v));
    }
    return ESP_RST_POWERON;
}

void esp_restart(void)
{
    fflush(stdout);
    std::exit(0);
}

uint32_t esp_get_free_heap_size(void)
{
    return 0;
}

uint32_t esp_get_minimum_free_heap_size(void)
{
    return 0;
}

void esp_chip_info(esp_chip_info_t *out_info)
{
    std::memset(out_info, 0, sizeof(*out_info));
    out_info->model = CHIP_POSIX_LINUX;
    out_info->cores = CONFIG_FREERTOS_NUMBER_OF_CORES;
    out_info->revision = 0;
}

const esp_app_desc_t *esp_app_get_description(void)
{
    static esp_app_desc_t desc = [] {
        esp_app_desc_t d;
        std::memset(&d, 0, sizeof(d));
        d.magic_word = 0xABCD5432;
        std::snprintf(d.version, sizeof(d.version), "%s", HIL_HOST_APP_VERSION);
        std::snprintf(d.project_name, sizeof(d.project_name), "%s", "yolo11_hil");
        std::snprintf(d.idf_ver, sizeof(d.idf_ver), "%s", esp_get_idf_version());
        return d;
    }();
    return &desc;
}

// sha256 of the running executable (/proc/self/exe): the host's app ELF. Computed once; main() asks for it
// before app_main because /proc/self/exe is gone once the main thread has exited. Empty if unreadable.
int esp_app_get_elf_sha256(char *dst, size_t size)
{
    if (dst == nullptr || size == 0) {
        return 0;
    }
    static char hex[65] = {0};
    static bool done = false;
    if (!done) {
        done = true;
        const int fd = open("/proc/self/exe", O_RDONLY);
        if (fd < 0) {
            std::fprintf(stderr, "esp_app_get_elf_sha256: cannot read /proc/self/exe\n");
        } else {
            mbedtls_sha256_context ctx;
            mbedtls_sha256_init(&ctx);
            mbedtls_sha256_starts(&ctx, 0);
            static unsigned char buf[65536];
            ssize_t n;
            while ((n = read(fd, buf, sizeof(buf))) > 0) {
                mbedtls_sha256_update(&ctx, buf, static_cast<size_t>(n));
            }
            close(fd);
            unsigned char digest[32];
            mbedtls_sha256_finish(&ctx, digest);
            mbedtls_sha256_free(&ctx);
            for (int i = 0; i < 32; ++i) {
                std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
            }
        }
    }
    const size_t len = std::strlen(hex);
    const size_t n = size - 1 < len ? size - 1 : len;
    std::memcpy(dst, hex, n);
    dst[n] = '\0';
    return static_cast<int>(n + 1);
}

esp_cpu_cycle_count_t esp_cpu_get_cycle_count(void)
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<esp_cpu_cycle_count_t>(static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + ts.tv_nsec);
}

int esp_cpu_get_core_id(void)
{
    return 0;
}

bool esp_ptr_external_ram(const void *p)
{
    return hil_host::ptr_in_spiram(p);
}

bool esp_ptr_in_drom(const void *p)
{
    return hil_host::ptr_in_flash(p);
}

bool esp_ptr_internal(const void *p)
{
    return !hil_host::ptr_in_spiram(p) && !hil_host::ptr_in_flash(p);
}

bool esp_ptr_in_tcm(const void *p)
{
    (void)p;
    return false;
}

bool esp_ptr_in_spm(const void *p)
{
    (void)p;
    return false;
}

bool esp_ptr_executable(const void *p)
{
    (void)p;
    return false;
}

bool esp_ptr_byte_accessible(const void *p)
{
    return p != nullptr;
}

esp_err_t esp_mmu_vaddr_to_paddr(void *vaddr, esp_paddr_t *out_paddr, mmu_target_t *out_target)
{
    *out_paddr = 0;
    *out_target = hil_host::ptr_in_flash(vaddr) ? MMU_TARGET_FLASH0 : MMU_TARGET_PSRAM0;
    return ESP_OK;
}

esp_err_t esp_cache_msync(void *addr, size_t size, int flags)
{
    (void)addr, (void)size, (void)flags;
    return ESP_OK;
}

uint32_t esp_random(void)
{
    static std::mt19937 rng(12345);  // deterministic: the host runs must be reproducible
    return static_cast<uint32_t>(rng());
}

void esp_fill_random(void *buf, size_t len)
{
    auto *p = static_cast<uint8_t *>(buf);
    for (size_t i = 0; i < len; ++i) {
        p[i] = static_cast<uint8_t>(esp_random());
    }
}

}  // extern "C"

#if HIL_HOST_PROVIDE_STRLCPY
// newlib's strlcpy for a glibc without one (compat/newlib_compat.h).
extern "C" size_t strlcpy(char *dst, const char *src, size_t size)
{
    const size_t len = std::strlen(src);
    if (size > 0) {
        const size_t n = len < size - 1 ? len : size - 1;
        std::memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}
#endif
