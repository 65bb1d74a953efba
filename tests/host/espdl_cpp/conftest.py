"""Fixtures for the esp-dl C++ tests: the host build (built once, cached), or a skip naming what is missing."""

from __future__ import annotations

import pytest

TARGETS = ("esp32p4", "esp32s3")


@pytest.fixture(scope="session")
def espdl_cpp():
    """host.espdl_cpp with its libraries built and loaded for both chips; skips when the esp-dl sources (ESPDL_PATH,
    default ../shared/third_party/esp-dl-v3.3.9) or the compiler are missing. A failing build is a failure."""
    from host import espdl_cpp
    from host.espdl_cpp import EspdlCppUnavailable

    try:
        for target in TARGETS:
            espdl_cpp.library(target)
    except EspdlCppUnavailable as exc:
        pytest.skip(str(exc))
    return espdl_cpp


@pytest.fixture(scope="session")
def espdl_root():
    """The esp-dl sources (ESPDL_PATH or the default), or a skip naming the path that lacks them."""
    from host.espdl_cpp.builder import EspdlCppUnavailable, check_espdl

    try:
        return check_espdl()
    except EspdlCppUnavailable as exc:
        pytest.skip(str(exc))
