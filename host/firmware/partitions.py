"""The firmware's partition table, parsed on the host: where the model partition is and how big it is.

Rules follow ESP-IDF's gen_esp32part.py (the table occupies 0x1000 bytes at
CONFIG_PARTITION_TABLE_OFFSET; an empty offset means "after the previous partition", aligned to
64 KiB for app partitions and 4 KiB for data; sizes and offsets take K/M suffixes). Parsed here so
the host can place the model image without an ESP-IDF install.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from host.errors import HarnessError

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
PARTITION_TABLE_SIZE = 0x1000
APP_ALIGN = 0x10000
DATA_ALIGN = 0x1000
TYPES = {"app": 0x00, "data": 0x01}
SUBTYPES = {
    0x00: {"factory": 0x00, "test": 0x20, **{f"ota_{i}": 0x10 + i for i in range(16)}},
    0x01: {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04, "efuse": 0x05,
           "undefined": 0x06, "esphttpd": 0x80, "fat": 0x81, "spiffs": 0x82, "littlefs": 0x83},
}


@dataclass(frozen=True)
class Partition:
    name: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: tuple[str, ...] = ()

    @property
    def end(self) -> int:
        return self.offset + self.size


def _number(text: str, what: str, line_no: int) -> int:
    match = re.fullmatch(r"(0x[0-9a-fA-F]+|\d+)\s*([KkMm]?)", text)
    if not match:
        raise HarnessError(f"partitions.csv line {line_no}: {what} '{text}' is not a number (use 0x..., 123, 64K, 4M)")
    value = int(match.group(1), 0)
    return value * {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]


def _kind(text: str, table: dict[str, int], what: str, line_no: int) -> int:
    if text in table:
        return table[text]
    try:
        return int(text, 0)
    except ValueError:
        raise HarnessError(f"partitions.csv line {line_no}: unknown {what} '{text}'") from None


def parse_partition_csv(text: str, table_offset: int = 0x8000) -> list[Partition]:
    """Parse a partition CSV with the table at `table_offset`; raises HarnessError on overlap or bad fields."""
    parts: list[Partition] = []
    last_end = table_offset + PARTITION_TABLE_SIZE
    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in (line + ",,,,").split(",")]
        name, ptype_s, subtype_s, offset_s, size_s, flags_s = fields[:6]
        ptype = _kind(ptype_s, TYPES, "type", line_no)
        if subtype_s:
            subtype = _kind(subtype_s, SUBTYPES.get(ptype, {}), "subtype", line_no)
        elif ptype == TYPES["app"]:
            raise HarnessError(f"partitions.csv line {line_no}: an app partition needs a subtype")
        else:
            subtype = SUBTYPES[0x01]["undefined"]
        if not size_s:
            raise HarnessError(f"partitions.csv line {line_no}: size is empty")
        size = _number(size_s, "size", line_no)
        align = APP_ALIGN if ptype == TYPES["app"] else DATA_ALIGN
        if offset_s:
            offset = _number(offset_s, "offset", line_no)
            if offset < last_end:
                raise HarnessError(f"partitions.csv line {line_no}: offset {offset:#x} overlaps the previous "
                                   f"partition or the table (ends {last_end:#x})")
        else:
            offset = (last_end + align - 1) // align * align
        if offset % align:
            raise HarnessError(f"partitions.csv line {line_no}: offset {offset:#x} is not aligned to {align:#x}")
        flags = tuple(f for f in flags_s.split(":") if f)
        parts.append(Partition(name, ptype, subtype, offset, size, flags))
        last_end = offset + size
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise HarnessError("partitions.csv: partition names must be unique")
    return parts


def read_sdkconfig(paths: list[Path]) -> dict[str, str]:
    """CONFIG_* assignments of sdkconfig files in order (later files win), values unquoted."""
    values: dict[str, str] = {}
    for path in paths:
        if not path.is_file():
            continue
        for raw in path.read_text().splitlines():
            match = re.fullmatch(r"(CONFIG_[A-Z0-9_]+)=(.*)", raw.strip())
            if match:
                value = match.group(2)
                values[match.group(1)] = value[1:-1] if value.startswith('"') and value.endswith('"') else value
    return values


def sdkconfig_defaults(target: str, config: str, firmware_dir: Path = FIRMWARE_DIR) -> list[Path]:
    """The SDKCONFIG_DEFAULTS chain of a (target, config) build, as the build passes it to idf.py."""
    chain = [firmware_dir / "sdkconfig.defaults", firmware_dir / f"sdkconfig.defaults.{target}"]
    ci = firmware_dir / f"sdkconfig.ci.{config}"
    if not ci.is_file():
        known = sorted(p.name.split(".", 2)[2] for p in firmware_dir.glob("sdkconfig.ci.*"))
        raise HarnessError(f"no firmware config '{config}' (firmware/sdkconfig.ci.{config}); known: {', '.join(known)}")
    return [p for p in chain if p.is_file()] + [ci]


def partition_table(target: str, config: str, firmware_dir: Path = FIRMWARE_DIR) -> tuple[list[Partition], int]:
    """(partitions, flash size in bytes) of a (target, config) build, from its sdkconfig chain."""
    cfg = read_sdkconfig(sdkconfig_defaults(target, config, firmware_dir))
    csv_name = cfg.get("CONFIG_PARTITION_TABLE_CUSTOM_FILENAME", "partitions.csv")
    offset = int(cfg.get("CONFIG_PARTITION_TABLE_OFFSET", "0x8000"), 0)
    csv_path = firmware_dir / csv_name
    if not csv_path.is_file():
        raise HarnessError(f"partition table {csv_path} named by CONFIG_PARTITION_TABLE_CUSTOM_FILENAME is missing")
    flash = next((k for k in cfg if re.fullmatch(r"CONFIG_ESPTOOLPY_FLASHSIZE_\d+MB", k) and cfg[k] == "y"), None)
    flash_size = int(re.search(r"(\d+)MB", flash).group(1)) * 1024 * 1024 if flash else 2 * 1024 * 1024
    parts = parse_partition_csv(csv_path.read_text(), offset)
    for p in parts:
        if p.end > flash_size:
            raise HarnessError(f"partition '{p.name}' ends at {p.end:#x}, beyond the {flash_size >> 20} MB flash")
    return parts, flash_size


def model_partition(target: str, config: str, label: str = "model", firmware_dir: Path = FIRMWARE_DIR) -> Partition:
    """The data partition the firmware loads its PDL3 model pack from (CONFIG_HIL_MODEL_PARTITION)."""
    parts, _ = partition_table(target, config, firmware_dir)
    for p in parts:
        if p.name == label:
            if p.type != TYPES["data"]:
                raise HarnessError(f"partition '{label}' must have type data (esp-dl looks it up as data)")
            return p
    raise HarnessError(f"no partition '{label}' in the {target} partition table: add one to firmware/partitions*.csv")


def model_partition_size(target: str, config: str = "uart", firmware_dir: Path = FIRMWARE_DIR) -> int | None:
    """Bytes of the firmware's model partition for (target, config); None without a firmware tree here
    (an installed copy), so `espdl check` says the size was not checked."""
    try:
        return model_partition(target, config, firmware_dir=firmware_dir).size
    except HarnessError:
        return None
