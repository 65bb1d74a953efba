"""On-demand host build of esp-dl's own ImagePreprocessor and yolo11PostProcessor (a ctypes library per chip).

What is compiled: eight files of esp-dl's open sources (vision/image: the preprocessor, the image transformer,
the RGB888 pixel conversion; vision/detect: the yolo11 postprocessor and NMS; dl/tool, dl/tensor (+ the
dl/base pad kernels dl_tensor_base.cpp calls): rounding, quantize, TensorBase), unchanged apart from three
patches applied to their copies in the build directory, plus this package's csrc/ (a C shim for ctypes,
the chip's expf/logf and rounding instruction, and stand-ins for the ESP-IDF headers and for dl::Model).

Patches (esp-dl 3.3.9 text; the build refuses sources where a patch does not apply exactly):
- dl/dl_define_private.hpp: `CONFIG_ROUND_HALF_EVEN_ENABLED` follows `HIL_ROUND_HALF_EVEN` (1 in the P4 build,
  0 in the S3 build) instead of CONFIG_IDF_TARGET_ESP32P4/S31. No IDF target is defined, so every SIMD/ISA
  path of esp-dl stays off (CONFIG_*_BOOST 0) and the portable C++ runs.
- dl/tool/src/dl_tool.cpp: in the P4 build `round_half_even(float)` computes what its `fcvt.w.s ..., rne`
  asm computes on the chip (hil_fcvt_w_s_rne); the S3 build keeps esp-dl's C fallback (used when
  CONFIG_PIE_V2_BOOST is 0; the tests reach it through the S3 library's probe, hil_round_array).
- dl/math/include/dl_math.hpp: `expf`/`logf` -> the chip's newlib routines (hil_expf/hil_logf) instead of
  glibc's.

Float behaviour: esp-dl is compiled with `-ffast-math -O3` (its CMakeLists.txt). The host compiles it the same
way and pins the x86-64 choices that would make GCC's output differ from GCC for rv32imafc: FMA contraction
on (-mfma, -ffp-contract=fast, no FMA-chain avoidance), no vectorisation (rv32imafc has no vector unit: a
vectorised float sum adds in another order), reassociation width 1 (the RISC-V default; x86 tuning would
split float sums into parallel chains), no reciprocal approximations. Nothing is linked with -ffast-math
(crtfastmath.o would set flush-to-zero for the whole Python process).

The build runs once per set of inputs: the cache key is the sha256 of every esp-dl file copied, the list of
files compiled, csrc/, the patches, the flags and the compiler's identity; the entry is written to a temporary
directory and renamed into place (host.cache), under a file lock, and verified against its manifest on every
load. At most two compilers run at once; a source whose preprocessed text is the same in both builds is
compiled once. ~10 s of CPU on an idle x86-64 host (17 s wall with -j2; over a minute on a loaded machine).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from host.cache import ArtifactCache, CacheEntry
from host.errors import HarnessError

PACKAGE_DIR = Path(__file__).resolve().parent
CSRC = PACKAGE_DIR / "csrc"
REPO_ROOT = PACKAGE_DIR.parents[1]
DEFAULT_ESPDL = REPO_ROOT.parent / "shared" / "third_party" / "esp-dl-v3.3.9"
BUILD_VERSION = "hil-espdl-cpp-1"
JOBS = 2  # compile processes at once (shared machines: never more)

#: The builds: variant -> (targets, HIL_ROUND_HALF_EVEN, HIL_FCVT_RNE).
VARIANTS: dict[str, tuple[tuple[str, ...], int, int]] = {
    "p4": (("esp32p4", "esp32s31"), 1, 1),
    "s3": (("esp32s3",), 0, 0),
}

#: esp-dl directories copied into the build tree (headers and C++ only: dl/model is replaced by the stand-in in
#: csrc/stubs; the chips' assembly is not copied, the portable code paths need none of it).
COPIED_DIRS = ("dl", "vision/image", "vision/detect")
SKIPPED_DIRS = ("dl/model",)
COPIED_SUFFIXES = (".hpp", ".h", ".cpp")

#: esp-dl sources compiled (relative to the esp-dl component root).
ESPDL_SOURCES = (
    "vision/image/dl_image_preprocessor.cpp",
    "vision/image/dl_image_process.cpp",
    "vision/image/dl_image_pixel_cvt_dispatch_rgb8882rgb888.cpp",
    "vision/detect/dl_detect_yolo11_postprocessor.cpp",
    "vision/detect/dl_detect_postprocessor.cpp",
    "dl/tool/src/dl_tool.cpp",
    "dl/tensor/src/dl_tensor_base.cpp",
    "dl/base/dl_base_pad.cpp",
)
SHIM_SOURCES = ("hil_shim.cpp",)
CHIP_SOURCES = ("hil_chip.c",)


@dataclass(frozen=True)
class Patch:
    path: str
    old: str
    new: str
    count: int  # exact number of occurrences expected in esp-dl's text
    why: str


PATCHES: tuple[Patch, ...] = (
    Patch("dl/dl_define_private.hpp",
          "#if CONFIG_IDF_TARGET_ESP32P4 || CONFIG_IDF_TARGET_ESP32S31\n#define CONFIG_ROUND_HALF_EVEN_ENABLED 1",
          "#if HIL_ROUND_HALF_EVEN /* host build (host/espdl_cpp): the chip's rule, set per build */\n"
          "#define CONFIG_ROUND_HALF_EVEN_ENABLED 1",
          1, "the rounding rule per build (P4: half to even, S3: half up) without an IDF target"),
    Patch("dl/tool/src/dl_tool.cpp",
          '#include "dl_tool.hpp"\n',
          '#include "dl_tool.hpp"\n#include "hil_chip.h"\n',
          1, "declare the chip's rounding instruction"),
    Patch("dl/tool/src/dl_tool.cpp",
          "int round_half_even(float value)\n{\n#if CONFIG_PIE_V2_BOOST\n",
          "int round_half_even(float value)\n{\n#if HIL_FCVT_RNE /* host build: what the asm below computes */\n"
          "    return hil_fcvt_w_s_rne(value);\n#elif CONFIG_PIE_V2_BOOST\n",
          1, "P4: fcvt.w.s rne (exact half to even) instead of the asm the host cannot run"),
    Patch("dl/math/include/dl_math.hpp",
          '#include "dl_tool.hpp"\n',
          '#include "dl_tool.hpp"\n#include "hil_chip.h"\n',
          1, "declare the chip's expf/logf"),
    Patch("dl/math/include/dl_math.hpp", "expf(", "hil_expf(", 2, "the chip's newlib expf (sigmoid, softmax)"),
    Patch("dl/math/include/dl_math.hpp", "logf(", "hil_logf(", 1, "the chip's newlib logf (inverse_sigmoid)"),
)

ESPDL_CXXFLAGS = ("-std=gnu++20", "-O3", "-ffast-math", "-fPIC", "-fvisibility=hidden",
                  "-fvisibility-inlines-hidden", "-w")
CHIP_CFLAGS = ("-std=c11", "-O2", "-fno-fast-math", "-ffp-contract=off", "-fPIC", "-fvisibility=hidden", "-w")
#: x86-64: make GCC's float code match GCC's for rv32imafc (see the module docstring).
X86_FLOAT_FLAGS = ("-mfma", "-ffp-contract=fast", "--param=avoid-fma-max-bits=0", "-mno-recip",
                   "-fno-tree-vectorize", "-fno-tree-loop-vectorize", "-fno-tree-slp-vectorize",
                   "--param=tree-reassoc-width=1")
GENERIC_FLOAT_FLAGS = ("-ffp-contract=fast", "-fno-tree-vectorize", "-fno-tree-loop-vectorize",
                       "-fno-tree-slp-vectorize", "--param=tree-reassoc-width=1")
LDFLAGS = ("-shared", "-Wl,-Bsymbolic", "-Wl,-z,defs")
#: Imports that would mean a host libm routine computes something the chip's newlib computes.
FORBIDDEN_IMPORTS = ("expf", "logf", "exp", "log", "__expf_finite", "__logf_finite")


class EspdlCppUnavailable(HarnessError):
    """The extension cannot be built here: the message names what is missing (the esp-dl path, the compiler)."""


@dataclass(frozen=True)
class Toolchain:
    cxx: str
    cc: str
    identity: str  # `--version` first lines of both, the machine, the FMA capability
    float_flags: tuple[str, ...]
    fma: bool


@dataclass(frozen=True)
class Built:
    """A verified cache entry holding one library per variant."""

    entry: CacheEntry
    espdl: Path
    info: dict

    def library(self, variant: str) -> Path:
        return self.entry.file(f"libhil_espdl_{variant}.so")


def espdl_path() -> Path:
    """`$ESPDL_PATH`, else ../shared/third_party/esp-dl-v3.3.9 next to the repository."""
    return Path(os.environ.get("ESPDL_PATH") or DEFAULT_ESPDL).expanduser()


def check_espdl(root: Path | None = None) -> Path:
    """The esp-dl component root, or EspdlCppUnavailable naming the path that lacks the sources."""
    root = espdl_path() if root is None else Path(root)
    missing = [p for p in (*ESPDL_SOURCES, *(p.path for p in PATCHES)) if not (root / p).is_file()]
    if missing:
        where = "ESPDL_PATH" if os.environ.get("ESPDL_PATH") else "the default path (set ESPDL_PATH to override)"
        raise EspdlCppUnavailable(f"esp-dl sources not found at {root} ({where}): missing {missing[0]}"
                                  + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    return root


def _first_line(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else ""


def _host_has_fma() -> bool:
    try:
        return " fma " in f" {Path('/proc/cpuinfo').read_text().replace(chr(10), ' ')} "
    except OSError:
        return False


def find_toolchain() -> Toolchain:
    """The host C and C++ compilers ($CXX/$CC, else g++/gcc), or EspdlCppUnavailable naming the missing one."""
    cxx = _compiler("CXX", ("g++", "c++"), "C++", "g++")
    cc = _compiler("CC", ("gcc", "cc"), "C", "gcc")
    machine = platform.machine().lower()
    fma = machine in ("x86_64", "amd64") and _host_has_fma()
    if machine in ("x86_64", "amd64"):
        flags = X86_FLOAT_FLAGS if fma else tuple(f for f in X86_FLOAT_FLAGS if f != "-mfma")
    else:
        flags, fma = GENERIC_FLOAT_FLAGS, machine in ("aarch64", "arm64")
    identity = f"{_first_line([cxx, '--version'])} | {_first_line([cc, '--version'])} | {machine} | fma={fma}"
    return Toolchain(cxx, cc, identity, flags, fma)


def _compiler(variable: str, names: tuple[str, ...], language: str, package: str) -> str:
    chosen = os.environ.get(variable)
    if chosen:
        if shutil.which(chosen) is None:
            raise EspdlCppUnavailable(f"no {language} compiler: ${variable}={chosen} is not an executable; unset it "
                                      f"or point it at one, to build esp-dl's C++ for the host")
        return chosen
    for name in names:
        if shutil.which(name):
            return name
    raise EspdlCppUnavailable(f"no {language} compiler: {' or '.join(names)} not on PATH; install it (Debian: "
                              f"apt-get install {package}) to build esp-dl's C++ for the host")


def _espdl_files(root: Path) -> list[Path]:
    files = []
    for top in COPIED_DIRS:
        for path in sorted((root / top).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if (path.is_file() and path.suffix in COPIED_SUFFIXES
                    and not any(rel.startswith(s + "/") for s in SKIPPED_DIRS)):
                files.append(path)
    return files


def _digest_files(paths: list[Path], base: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.relative_to(base).as_posix().encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _csrc_files() -> list[Path]:
    return sorted(p for p in CSRC.rglob("*") if p.is_file() and p.suffix in (".c", ".cpp", ".h", ".hpp"))


def cache_key(root: Path, tools: Toolchain) -> dict:
    """Everything the libraries depend on: the exact sources compiled, the patches, the flags, the compiler."""
    return {
        "what": "esp-dl C++ pre/postprocess for the host (host/espdl_cpp)",
        "version": BUILD_VERSION,
        "espdl_sources_sha256": _digest_files(_espdl_files(root), root),
        "compiled": {"espdl": ESPDL_SOURCES, "shim": SHIM_SOURCES, "chip": CHIP_SOURCES, "copied": COPIED_DIRS},
        "csrc_sha256": _digest_files(_csrc_files(), CSRC),
        "patches_sha256": hashlib.sha256(json.dumps([p.__dict__ for p in PATCHES]).encode()).hexdigest(),
        "flags": {"cxx": ESPDL_CXXFLAGS, "float": tools.float_flags, "c": CHIP_CFLAGS, "ld": LDFLAGS},
        "toolchain": tools.identity,
        "variants": {k: v[1:] for k, v in VARIANTS.items()},
    }


def _apply_patches(tree: Path) -> str:
    """Patch the copies in `tree`; returns a unified diff of what changed (kept in the entry for the record)."""
    import difflib

    before: dict[str, str] = {}
    for patch in PATCHES:
        path = tree / patch.path
        text = path.read_text()
        before.setdefault(patch.path, text)
        found = text.count(patch.old)
        if found != patch.count:
            raise HarnessError(f"esp-dl patch for {patch.path} ({patch.why}) expects {patch.count} occurrence(s) of "
                               f"{patch.old!r}, found {found}: these esp-dl sources are not the 3.3.9 text the "
                               f"host build knows; update host/espdl_cpp/builder.py PATCHES")
        path.write_text(text.replace(patch.old, patch.new))
    diff = []
    for rel, old in before.items():
        diff += difflib.unified_diff(old.splitlines(True), (tree / rel).read_text().splitlines(True),
                                     f"a/{rel}", f"b/{rel}")
    return "".join(diff)


def _run(cmd: list[str], log: list[str]) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True)
    log.append("$ " + " ".join(cmd) + "\n" + out.stdout + out.stderr)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-15:]
        raise HarnessError(f"building esp-dl's C++ for the host failed ({Path(cmd[-1]).name}):\n" + "\n".join(tail))


def _dynamic_imports(library: Path) -> set[str] | None:
    nm = shutil.which("nm")
    if nm is None:
        return None
    out = subprocess.run([nm, "-D", "--undefined-only", str(library)], capture_output=True, text=True)
    return {line.split()[-1].split("@")[0] for line in out.stdout.splitlines() if line.strip()}


def _compile_all(tmp: Path, tools: Toolchain, log: list[str]) -> dict:
    tree = tmp / "src"
    include = [f"-I{CSRC}", f"-I{CSRC / 'stubs'}"]
    # As esp-dl's CMakeLists.txt: every header folder, the generic isa/ folders but none of a chip's isa/<chip>.
    include += sorted({f"-I{p.parent}" for p in tree.rglob("*") if p.suffix in (".hpp", ".h")
                       and "isa" not in p.parent.relative_to(tree).parts[:-1]})
    objs = tmp / "obj"
    objs.mkdir()
    jobs: list[list[str]] = []
    per_variant: dict[str, list[Path]] = {v: [] for v in VARIANTS}
    # Sources whose preprocessed text is the same in both builds are compiled once.
    sources = {rel: (tree / rel if rel in ESPDL_SOURCES else CSRC / rel) for rel in (*ESPDL_SOURCES, *SHIM_SOURCES)}

    def preprocessed(rel: str, variant: str) -> str:
        _, even, fcvt = VARIANTS[variant]
        pre = subprocess.run([tools.cxx, *ESPDL_CXXFLAGS, f"-DHIL_ROUND_HALF_EVEN={even}", f"-DHIL_FCVT_RNE={fcvt}",
                              *include, "-E", "-P", str(sources[rel])], capture_output=True, text=True)
        if pre.returncode != 0:
            log.append(pre.stderr)
            raise HarnessError(f"preprocessing {rel} for the host failed:\n" + "\n".join(pre.stderr.splitlines()[-15:]))
        return hashlib.sha256(pre.stdout.encode()).hexdigest()

    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        pending = {(rel, v): pool.submit(preprocessed, rel, v) for rel in sources for v in VARIANTS}
        texts = {k: f.result() for k, f in pending.items()}
    for rel, src in sources.items():
        for digest in sorted({texts[(rel, v)] for v in VARIANTS}):
            variants = [v for v in VARIANTS if texts[(rel, v)] == digest]
            _, even, fcvt = VARIANTS[variants[0]]
            obj = objs / f"{Path(rel).stem}.{'_'.join(variants)}.o"
            jobs.append([tools.cxx, *ESPDL_CXXFLAGS, *tools.float_flags, f"-DHIL_ROUND_HALF_EVEN={even}",
                         f"-DHIL_FCVT_RNE={fcvt}", *include, "-c", "-o", str(obj), str(src)])
            for v in variants:
                per_variant[v].append(obj)
    for rel in CHIP_SOURCES:
        obj = objs / f"{Path(rel).stem}.o"
        chip_fma = ("-mfma",) if "-mfma" in tools.float_flags else ()
        jobs.append([tools.cc, *CHIP_CFLAGS, *chip_fma, f"-I{CSRC}", "-c", "-o", str(obj), str(CSRC / rel)])
        for v in VARIANTS:
            per_variant[v].append(obj)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        for future in [pool.submit(_run, job, log) for job in jobs]:
            future.result()
    for variant, objects in per_variant.items():
        library = tmp / f"libhil_espdl_{variant}.so"
        _run([tools.cxx, *LDFLAGS, "-o", str(library), *map(str, objects), "-lm"], log)
        imported = _dynamic_imports(library)
        if imported is not None and imported & set(FORBIDDEN_IMPORTS):
            raise HarnessError(f"the host build of esp-dl imports {sorted(imported & set(FORBIDDEN_IMPORTS))} from the "
                               f"host's libm: the chip's expf/logf patch did not take")
    return {"compile_jobs": len(jobs), "compile_s": round(time.monotonic() - started, 2)}


def _build_into(tmp: Path, root: Path, tools: Toolchain, key: dict) -> None:
    started = time.monotonic()
    tree = tmp / "src"
    for path in _espdl_files(root):
        dest = tree / path.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    diff = _apply_patches(tree)
    log: list[str] = []
    try:
        stats = _compile_all(tmp, tools, log)
    finally:
        (tmp / "build.log").write_text("\n".join(log))
    shutil.rmtree(tree)
    shutil.rmtree(tmp / "obj")
    (tmp / "patches.diff").write_text(diff)
    info = {"espdl_path": str(root), "toolchain": tools.identity, "fma": tools.fma,
            "float_flags": list(tools.float_flags), "build_s": round(time.monotonic() - started, 2), **stats,
            "variants": {v: list(t) for v, (t, _, _) in VARIANTS.items()}, "key": key}
    (tmp / "build.json").write_text(json.dumps(info, indent=1))


def build(root: Path | None = None, cache: ArtifactCache | None = None) -> Built:
    """Build (or find in the cache) the P4 and S3 libraries; EspdlCppUnavailable when sources or compiler are missing."""
    root = check_espdl(root)
    tools = find_toolchain()
    key = cache_key(root, tools)
    cache = cache or ArtifactCache("espdl_cpp")
    entry = cache.get_or_build(key, lambda tmp: _build_into(tmp, root, tools, key))
    return Built(entry, root, json.loads(entry.file("build.json").read_text()))


def variant_of(target: str) -> str:
    """The build a chip's arithmetic needs ("p4": half to even, "s3": half up)."""
    for variant, (targets, _, _) in VARIANTS.items():
        if target in targets:
            return variant
    raise HarnessError(f"no host build of esp-dl for target {target!r}: known targets are "
                       f"{', '.join(t for v in VARIANTS.values() for t in v[0])}")

