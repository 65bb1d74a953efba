"""The chips the harness knows, in one table: which ones it tests, and how ESP-DL rounds on each.

ESP-DL rounds differently per chip (esp-dl/dl/dl_define_private.hpp CONFIG_ROUND_HALF_EVEN_ENABLED,
dl/tool/src/dl_tool.cpp): ESP32-P4 and ESP32-S31 round half to even (`fcvt.w.s ..., rne` on the P4);
every other chip rounds half up. The host must reproduce the chip's rule: a single tie decides an
int8 threshold.
"""

from __future__ import annotations

from host.errors import HarnessError

#: chip -> rounds half to even (else half up). Every chip whose rounding the host reproduces.
HALF_EVEN: dict[str, bool] = {"esp32p4": True, "esp32s31": True, "esp32s3": False}

#: The chips the harness builds firmware for and runs the HIL suite on (the `--target` choices).
TARGETS: tuple[str, ...] = ("esp32p4", "esp32s3")
DEFAULT_TARGET = "esp32p4"


def check_target(target: str) -> str:
    """Return `target` if ESP-DL's rounding rule for it is known, else raise a HarnessError."""
    if target not in HALF_EVEN:
        raise HarnessError(f"unknown target {target!r}: the harness knows ESP-DL's arithmetic only for "
                           f"{', '.join(sorted(HALF_EVEN))}; pass one of {', '.join(TARGETS)} with --target")
    return target


def half_even(target: str) -> bool:
    """True when `target` rounds half to even, False when it rounds half up."""
    return HALF_EVEN[check_target(target)]


def check_supported(target: str) -> str:
    """Return `target` if the harness builds firmware for it and tests it, else raise a HarnessError."""
    if target not in TARGETS:
        raise HarnessError(f"unknown target {target!r}; the harness supports {', '.join(TARGETS)} (--target)")
    return target
