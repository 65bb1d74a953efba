// esp_partition_* on the host: data partitions backed by files (HIL_HOST_PARTITIONS, see
// include/esp_partition.h), mmapped read-only like flash through the MMU.
//
// Mapping semantics follow ESP-IDF's spi_flash_mmap (components/spi_flash/flash_mmap.c, v5.5): a region
// that is already mapped is not mapped again; the second caller gets the same address and a handle that
// unmaps nothing, and unmapping the first handle removes the mapping for every user. The host then
// really unmaps it, so code that keeps using such a pointer faults here as it would read garbage there.
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "esp_partition.h"
#include "hil_host.hpp"
#include "spi_flash_mmap.h"

namespace {

struct Part {
    esp_partition_t info;
    std::string path;
    uint8_t *image = nullptr;  // the partition content (file + 0xFF up to the partition size), mmapped
};

struct Mapping {
    uint32_t handle;
    const Part *part;
    bool owner;  // the first mapping of the region: unmapping it removes it for all
};

std::mutex g_lock;
std::vector<Part> *g_parts = nullptr;
std::vector<Mapping> g_maps;
uint32_t g_next_handle = 1;

std::vector<Part> &parts()
{
    if (g_parts != nullptr) {
        return *g_parts;
    }
    g_parts = new std::vector<Part>();
    const char *spec = std::getenv("HIL_HOST_PARTITIONS");
    std::string s = spec ? spec : "";
    uint32_t address = 0x310000;  // after the app, as in firmware/partitions.csv (the value is informative)
    size_t pos = 0;
    while (pos < s.size()) {
        size_t comma = s.find(',', pos);
        if (comma == std::string::npos) {
            comma = s.size();
        }
        const std::string item = s.substr(pos, comma - pos);
        pos = comma + 1;
        const size_t eq = item.find('=');
        if (eq == std::string::npos || eq == 0 || eq > 16) {
            std::fprintf(stderr, "HIL_HOST_PARTITIONS: '%s' is not label=path (label of at most 16 characters)\n",
                         item.c_str());
            std::exit(2);
        }
        Part p;
        std::memset(&p.info, 0, sizeof(p.info));
        std::snprintf(p.info.label, sizeof(p.info.label), "%s", item.substr(0, eq).c_str());
        p.path = item.substr(eq + 1);
        std::ifstream f(p.path, std::ios::binary | std::ios::ate);
        if (!f) {
            std::fprintf(stderr, "HIL_HOST_PARTITIONS: cannot read %s\n", p.path.c_str());
            std::exit(2);
        }
        const size_t file_size = static_cast<size_t>(f.tellg());
        const size_t size = (file_size + 0xFFF) & ~static_cast<size_t>(0xFFF);
        p.info.type = ESP_PARTITION_TYPE_DATA;
        p.info.subtype = ESP_PARTITION_SUBTYPE_DATA_SPIFFS;
        p.info.address = address;
        p.info.size = static_cast<uint32_t>(size == 0 ? 0x1000 : size);
        p.info.erase_size = 0x1000;
        address += p.info.size;
        g_parts->push_back(p);
    }
    return *g_parts;
}

Part *find_part(const esp_partition_t *partition)
{
    for (Part &p : parts()) {
        if (&p.info == partition) {
            return &p;
        }
    }
    return nullptr;
}

}  // namespace

namespace hil_host {

bool ptr_in_flash(const void *ptr)
{
    std::lock_guard<std::mutex> guard(g_lock);
    if (g_parts == nullptr) {
        return false;
    }
    for (const Part &p : *g_parts) {
        if (p.image != nullptr && ptr >= p.image && ptr < p.image + p.info.size) {
            return true;
        }
    }
    return false;
}

}  // namespace hil_host

extern "C" {

const esp_partition_t *esp_partition_find_first(esp_partition_type_t type, esp_partition_subtype_t subtype,
                                                const char *label)
{
    std::lock_guard<std::mutex> guard(g_lock);
    for (const Part &p : parts()) {
        if ((type == ESP_PARTITION_TYPE_ANY || type == p.info.type) &&
            (subtype == ESP_PARTITION_SUBTYPE_ANY || subtype == p.info.subtype) &&
            (label == nullptr || std::strcmp(label, p.info.label) == 0)) {
            return &p.info;
        }
    }
    return nullptr;
}

esp_err_t esp_partition_read(const esp_partition_t *partition, size_t src_offset, void *dst, size_t size)
{
    if (partition == nullptr || dst == nullptr || src_offset + size > partition->size) {
        return ESP_ERR_INVALID_ARG;
    }
    std::lock_guard<std::mutex> guard(g_lock);
    const Part *part = find_part(partition);
    if (part == nullptr) {
        return ESP_ERR_INVALID_ARG;
    }
    std::memset(dst, 0xFF, size);
    std::ifstream f(part->path, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(src_offset));
    f.read(static_cast<char *>(dst), static_cast<std::streamsize>(size));
    return ESP_OK;
}

esp_err_t esp_partition_mmap(const esp_partition_t *partition, size_t offset, size_t size,
                             esp_partition_mmap_memory_t memory, const void **out_ptr,
                             esp_partition_mmap_handle_t *out_handle)
{
    (void)memory;
    if (partition == nullptr || out_ptr == nullptr || out_handle == nullptr || offset + size > partition->size) {
        return ESP_ERR_INVALID_ARG;
    }
    std::lock_guard<std::mutex> guard(g_lock);
    Part *part = find_part(partition);
    if (part == nullptr) {
        return ESP_ERR_INVALID_ARG;
    }
    bool owner = false;
    if (part->image == nullptr) {
        void *m = mmap(nullptr, part->info.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            return ESP_ERR_NO_MEM;
        }
        auto *bytes = static_cast<uint8_t *>(m);
        std::memset(bytes, 0xFF, part->info.size);  // erased flash
        std::ifstream f(part->path, std::ios::binary);
        f.read(reinterpret_cast<char *>(bytes), part->info.size);
        mprotect(m, part->info.size, PROT_READ);  // flash is read-only through the cache
        part->image = bytes;
        owner = true;
    }
    const uint32_t handle = g_next_handle++;
    g_maps.push_back({handle, part, owner});
    *out_ptr = part->image + offset;
    *out_handle = handle;
    return ESP_OK;
}

void esp_partition_munmap(esp_partition_mmap_handle_t handle)
{
    std::lock_guard<std::mutex> guard(g_lock);
    for (size_t i = 0; i < g_maps.size(); ++i) {
        if (g_maps[i].handle != handle) {
            continue;
        }
        const Mapping m = g_maps[i];
        g_maps.erase(g_maps.begin() + static_cast<long>(i));
        if (m.owner) {
            Part *part = const_cast<Part *>(m.part);
            munmap(part->image, part->info.size);
            part->image = nullptr;
            // Every other mapping of the region is gone too; their handles now unmap nothing.
            for (Mapping &other : g_maps) {
                if (other.part == part) {
                    other.owner = false;
                }
            }
        }
        return;
    }
}

uint32_t spi_flash_mmap_get_free_pages(spi_flash_mmap_memory_t memory)
{
    (void)memory;
    return 256;
}

}  // extern "C"
