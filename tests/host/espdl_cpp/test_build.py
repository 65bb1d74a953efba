"""The on-demand host build of esp-dl's pre/postprocess: cached by the sources it compiles, patched as stated,
refused or skipped naming what is missing, and used by the simulated DUT (or not, saying so)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from host.cache import ArtifactCache
from host.errors import HarnessError
from host.espdl_cpp import builder as espdl_build
from host.espdl_cpp.builder import EspdlCppUnavailable, PATCHES, cache_key, check_espdl, find_toolchain

EXPORTS = {"hil_last_error", "hil_round_half_even_enabled", "hil_round_array", "hil_float_array", "hil_dfl_integral",
           "hil_score_threshold", "hil_preprocess", "hil_postprocess", "hil_post_counts", "hil_post_read",
           "hil_post_free"}


def test_build_is_cached_and_holds_both_chips(espdl_cpp) -> None:
    first = espdl_cpp.built()
    again = espdl_build.build()
    assert again.entry.path == first.entry.path and again.entry.hit
    for variant in ("p4", "s3"):
        assert first.library(variant).is_file()
    info = first.info
    assert info["key"]["espdl_sources_sha256"] == cache_key(check_espdl(), find_toolchain())["espdl_sources_sha256"]
    diff = first.entry.file("patches.diff").read_text()
    assert "HIL_ROUND_HALF_EVEN" in diff and "hil_fcvt_w_s_rne" in diff and "hil_expf(" in diff


def test_libraries_round_per_chip_and_export_only_the_shim(espdl_cpp) -> None:
    assert espdl_cpp.library("esp32p4").hil_round_half_even_enabled() == 1
    assert espdl_cpp.library("esp32s31").hil_round_half_even_enabled() == 1
    assert espdl_cpp.library("esp32s3").hil_round_half_even_enabled() == 0
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not on PATH: cannot list the libraries' symbols")
    for variant in ("p4", "s3"):
        lib = espdl_cpp.built().library(variant)
        defined = subprocess.run([nm, "-D", "--defined-only", str(lib)], capture_output=True, text=True).stdout
        names = {line.split()[-1] for line in defined.splitlines() if " T " in line}
        assert names == EXPORTS
        imported = subprocess.run([nm, "-D", "--undefined-only", str(lib)], capture_output=True, text=True).stdout
        assert not {line.split()[-1].split("@")[0] for line in imported.splitlines()} & {"expf", "logf", "exp", "log"}


def test_loading_keeps_subnormals(espdl_cpp) -> None:
    """No flush-to-zero in the process after loading (a library linked with -ffast-math would set it)."""
    espdl_cpp.library("esp32s3")
    assert np.float32(1e-45) * np.float32(1.0) > 0


def test_source_change_changes_the_key(espdl_root, tmp_path) -> None:
    root = espdl_root
    copy = tmp_path / "esp-dl"
    for top in ("dl", "vision/image", "vision/detect"):
        shutil.copytree(root / top, copy / top, ignore=shutil.ignore_patterns("*.S"))
    tools = find_toolchain()
    assert cache_key(copy, tools) == cache_key(root, tools)
    header = copy / "vision/detect/dl_detect_define.hpp"
    header.write_text(header.read_text() + "\n// changed\n")
    assert cache_key(copy, tools)["espdl_sources_sha256"] != cache_key(root, tools)["espdl_sources_sha256"]


def test_sources_the_patches_do_not_fit_are_refused(espdl_root, tmp_path) -> None:
    root = espdl_root
    tree = tmp_path / "src"
    for patch in PATCHES:
        (tree / patch.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / patch.path, tree / patch.path)
    path = tree / "dl/tool/src/dl_tool.cpp"
    path.write_text(path.read_text().replace("int round_half_even(float value)\n{\n#if CONFIG_PIE_V2_BOOST\n",
                                             "int round_half_even(float value)\n{\n#if 1\n"))
    with pytest.raises(HarnessError, match="dl_tool.cpp.*found 0"):
        espdl_build._apply_patches(tree)


def test_missing_espdl_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ESPDL_PATH", str(tmp_path / "no-esp-dl"))
    with pytest.raises(EspdlCppUnavailable, match=f"esp-dl sources not found at {tmp_path / 'no-esp-dl'}"):
        espdl_build.build(cache=ArtifactCache("espdl_cpp", root=tmp_path / "cache"))


def test_missing_compiler_is_named(espdl_root, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CXX", str(tmp_path / "no-g++"))
    with pytest.raises(EspdlCppUnavailable, match=re.escape(f"no C++ compiler: $CXX={tmp_path / 'no-g++'} is not")):
        espdl_build.build(cache=ArtifactCache("espdl_cpp", root=tmp_path / "cache"))
    monkeypatch.delenv("CXX")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EspdlCppUnavailable, match=re.escape("no C++ compiler: g++ or c++ not on PATH")):
        espdl_build.build(cache=ArtifactCache("espdl_cpp", root=tmp_path / "cache"))


def test_default_path_is_next_to_the_repository(monkeypatch) -> None:
    monkeypatch.delenv("ESPDL_PATH", raising=False)
    repo = Path(__file__).resolve().parents[3]
    assert espdl_build.espdl_path() == repo.parent / "shared" / "third_party" / "esp-dl-v3.3.9"


def test_signatures_are_host_chips() -> None:
    """Drop-in for DetectPipeline(preprocessor=, postprocessor=): the same parameters, kinds and defaults."""
    import inspect

    from host import espdl_cpp
    from host.chip.postprocess import postprocess
    from host.chip.preprocess import preprocess

    for ours, theirs in ((preprocess, espdl_cpp.preprocess), (postprocess, espdl_cpp.postprocess)):
        a, b = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
        assert [(p.name, p.kind, p.default) for p in a.values()] == [(p.name, p.kind, p.default) for p in b.values()]
