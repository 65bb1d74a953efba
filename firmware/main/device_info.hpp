// What the device says about itself: chip, revision, versions, app identity, reset reason, heap.
#pragma once

#include <string>

#include "hil_protocol/records.hpp"

namespace hil_fw {

std::string reset_reason();
std::string app_elf_sha256();
// Fills the chip/version/app/heap fields of an "info" record (model fields are the caller's).
void fill_device_info(hil::InfoFields *f);

}  // namespace hil_fw
