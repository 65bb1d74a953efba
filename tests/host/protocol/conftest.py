"""Shared fixture: the hil_protocol C++ component built natively once per session (with ASan/UBSan)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

COMPONENT = Path(__file__).resolve().parents[3] / "firmware" / "components" / "hil_protocol"


def cmake_build(build_dir: Path, *extra: str, target: str | None = None) -> subprocess.CompletedProcess:
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    conf = subprocess.run(["cmake", "-S", str(COMPONENT), "-B", str(build_dir), *generator, *extra],
                          capture_output=True, text=True)
    if conf.returncode != 0:
        return conf
    cmd = ["cmake", "--build", str(build_dir), "--parallel", "2"] + (["--target", target] if target else [])
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.fixture(scope="session")
def cmake_builder():
    """cmake_build(build_dir, *cmake_args, target=None) for tests that need another configuration."""
    return cmake_build


@pytest.fixture(scope="session")
def cpp_test(tmp_path_factory) -> Path:
    """Path of the hil_protocol_test binary (unit | encode | decode | serve)."""
    if not shutil.which("cmake") or not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("no C++ toolchain: install g++ and cmake (apt-get install -y g++ cmake ninja-build)")
    build = tmp_path_factory.mktemp("hil_protocol_build")
    # Debug (-O0): compiles several times faster than an optimised sanitizer build; the tests are tiny.
    result = cmake_build(build, "-DCMAKE_BUILD_TYPE=Debug", target="hil_protocol_test")
    assert result.returncode == 0, result.stdout + result.stderr
    return build / "hil_protocol_test"
