"""Firmware on the host side: partition layout, ESP-IDF build (cached), and the flash plan for a board.

Without an ESP-IDF environment every entry point raises `IdfMissing` (a HarnessError) that names
what is missing and how to install it; nothing is silently skipped.
"""

from host.firmware.build import FirmwareBuild, IdfEnv, IdfMissing, build_firmware
from host.firmware.flash import FlashPlan, Region, plan_flash
from host.firmware.partitions import Partition, model_partition, model_partition_size, parse_partition_csv

__all__ = ["FirmwareBuild", "FlashPlan", "IdfEnv", "IdfMissing", "Partition", "Region", "build_firmware",
           "model_partition", "model_partition_size", "parse_partition_csv", "plan_flash"]
